"""Decoder-only transformer: a stack of masked self-attention + feed-forward layers and a language-model head.

    config = DecoderConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4)
    model = DecoderForCausalLM(config)
    out = model.generate(input_ids, max_new_tokens=20)              # or model(input_ids, labels=input_ids).loss

Each token's vector is corrected by the tokens before it (masked self-attention: a token never looks
ahead), then transformed on its own (feed-forward). Stacked, the last vector of a position predicts the
next token. The defaults are the original Transformer's decoder (Vaswani et al. 2017) without
cross-attention; ``norm_position="pre"``, ``position_embedding_type="learned"``, ``scale_embedding=False``,
``hidden_act="gelu_new"`` give GPT-2 exactly (``w2vformer.conversion.gpt2`` converts its checkpoints).

This file is copied into every checkpoint (``trust_remote_code``): standard library, torch, transformers
and same-folder modules only.

Shape legend: B batch, T query length, S key length (cached + new), H heads, D head dim, C hidden size,
I intermediate size, V vocab.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .attention import (CACHE_NAME, InferenceLayoutMixin, MultiHeadAttention, RotaryEmbedding, check_input_ids,
                        grow_in_place, pick_cache, sinusoidal_position_encoding)
from .configuration_decoder import DecoderConfig

__all__ = ["DecoderPreTrainedModel", "DecoderModel", "DecoderForCausalLM"]


class DecoderMLP(nn.Module):
    """Position-wise feed-forward block: ``fc2(dropout(act(fc1(x))))``, C -> I -> C (paper section 3.3)."""

    def __init__(self, config):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(self.fc1(hidden_states))  # (B, T, I)
        hidden_states = self.activation_dropout(hidden_states)
        return self.fc2(hidden_states)  # (B, T, C)


class DecoderLayer(GradientCheckpointingLayer):
    """One decoder layer: masked self-attention then feed-forward, each inside a residual connection.

    Post-norm (the paper): ``x = LayerNorm(x + Dropout(Sublayer(x)))``.
    Pre-norm (GPT-2):      ``x = x + Dropout(Sublayer(LayerNorm(x)))``; the model adds a final LayerNorm.
    """

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.norm_position = config.norm_position
        self.self_attn = MultiHeadAttention(config, layer_idx=layer_idx, is_causal=True)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DecoderMLP(config)
        self.mlp_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """Args:
            hidden_states (`torch.Tensor` of shape `(B, T, C)`).
            attention_mask: causal (+ padding) mask from ``create_causal_mask``, in the attention kernel's format.
            position_embeddings: rotary ``(cos, sin)`` of shape `(B, T, D)` each, or None.
            cache: the KV cache, updated in place (``past_key_values``: its name before transformers 5.24, the
                name ``GradientCheckpointingLayer`` clears there).

        Returns:
            `torch.Tensor` of shape `(B, T, C)`.
        """
        attn_kwargs = dict(attention_mask=attention_mask, cache=pick_cache(cache, past_key_values),
                           position_embeddings=position_embeddings, **kwargs)
        if self.norm_position == "pre":
            # Self Attention
            residual = hidden_states
            hidden_states = self.self_attn_layer_norm(hidden_states)
            hidden_states, _ = self.self_attn(hidden_states, **attn_kwargs)
            hidden_states = residual + self.dropout(hidden_states)
            # Fully Connected
            residual = hidden_states
            hidden_states = self.mlp(self.mlp_layer_norm(hidden_states))
            hidden_states = residual + self.dropout(hidden_states)
        else:
            # Self Attention
            residual = hidden_states
            hidden_states, _ = self.self_attn(hidden_states, **attn_kwargs)
            hidden_states = self.self_attn_layer_norm(residual + self.dropout(hidden_states))
            # Fully Connected
            residual = hidden_states
            hidden_states = self.mlp(hidden_states)
            hidden_states = self.mlp_layer_norm(residual + self.dropout(hidden_states))
        return hidden_states


class DecoderPreTrainedModel(InferenceLayoutMixin, PreTrainedModel):
    """Weight init and the transformers class attributes shared by [`DecoderModel`] and [`DecoderForCausalLM`]."""

    config_class = DecoderConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _can_record_outputs = {"hidden_states": DecoderLayer, "attentions": MultiHeadAttention}

    @torch.no_grad()
    def _init_weights(self, module):
        if self.config.scale_embedding and module is self.get_input_embeddings():
            # token vectors multiplied by sqrt(C) start at unit variance, like the sinusoids they are added to
            # (fairseq's convention for scaled embeddings); a table loaded from a checkpoint is left alone
            init.normal_(module.weight, mean=0.0, std=self.config.hidden_size**-0.5)
        else:  # Linear / Embedding: normal(0, initializer_range); LayerNorm: ones and zeros
            super()._init_weights(module)


class DecoderModel(DecoderPreTrainedModel):
    """The decoder stack without a head: token (+ position) embeddings, `num_hidden_layers` [`DecoderLayer`]s and,
    for pre-norm, a final LayerNorm. Returns the contextual vector of every token.

    Args:
        config ([`DecoderConfig`]).
    """

    def __init__(self, config: DecoderConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_scale = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
        self.embed_positions = None
        self.rotary_emb = None
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings + config.position_offset,
                                                config.hidden_size)
        elif config.position_embedding_type == "rotary":
            self.rotary_emb = RotaryEmbedding(config.hidden_size // config.num_attention_heads, config.rope_theta)
        self.embedding_layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.embedding_layer_norm else None
        )
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([DecoderLayer(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_position == "pre" else None
        )
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def _check_positions(self, position_ids: torch.Tensor, past_seen: int) -> None:
        """Learned positions cannot extrapolate: a clear error instead of an index error inside torch."""
        if torch.compiler.is_compiling():  # data-dependent check: skip inside torch.compile graphs
            return
        last = int(position_ids.max()) if position_ids.numel() else 0
        if last >= self.config.max_position_embeddings:
            raise ValueError(
                f"the sequence reaches position {last} ({past_seen} cached + {position_ids.shape[-1]} new tokens), "
                f"but this model's learned position embeddings only cover max_position_embeddings="
                f"{self.config.max_position_embeddings} positions (0..{self.config.max_position_embeddings - 1}); "
                f"shorten the input or generate fewer tokens"
            )

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        r"""Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): token ids; with a cache, only the
                tokens not seen yet.
            attention_mask (`torch.Tensor` of shape `(batch_size, past + sequence_length)`, *optional*): 1 for real
                tokens, 0 for padding (left or right).
            position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): positions of the
                tokens; default `past + 0..T-1`. `generate` derives them from the attention mask, so left padding
                gives every sequence positions starting at 0.
            cache (`Cache`, *optional*): a `DynamicCache`/`StaticCache`; created when `use_cache` and None.
                `past_key_values`, its name before transformers 5.24, is accepted too.
            inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*):
                token vectors used instead of `input_ids` (taken as already scaled).
            use_cache (`bool`, *optional*): return the cache (defaults to `config.use_cache`).
            output_attentions / output_hidden_states (`bool`, *optional*): also return A' `(B, H, T, S)` per layer
                (eager attention only) / the `num_hidden_layers + 1` hidden states.

        Returns:
            [`BaseModelOutputWithPast`]: `last_hidden_state` `(batch_size, sequence_length, hidden_size)`,
            `cache` (`past_key_values` before transformers 5.24), `hidden_states`, `attentions`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids) * self.embed_scale  # (B, T, C)

        cache = pick_cache(cache, past_key_values)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        grow_in_place(cache)  # append new keys/values in place, not by concatenating the cache
        past_seen = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen
            position_ids = position_ids.unsqueeze(0)  # (1, T)

        # Positions: added to the token vectors (learned, sinusoidal) or rotating Q and K in every layer (rotary)
        hidden_states = inputs_embeds
        positions = position_ids + self.config.position_offset
        position_embeddings = None
        if self.embed_positions is not None:
            self._check_positions(position_ids, past_seen)
            hidden_states = hidden_states + self.embed_positions(positions)
        elif self.rotary_emb is not None:
            position_embeddings = self.rotary_emb(hidden_states, positions)  # cos, sin: (B, T, D)
        else:
            hidden_states = hidden_states + sinusoidal_position_encoding(
                positions, self.config.hidden_size, dtype=hidden_states.dtype
            )
        if self.embedding_layer_norm is not None:
            hidden_states = self.embedding_layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=hidden_states,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **{CACHE_NAME: cache},
        )
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                **{CACHE_NAME: cache},  # the name GradientCheckpointingLayer clears
                **kwargs,
            )
        if self.final_layer_norm is not None:
            hidden_states = self.final_layer_norm(hidden_states)

        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            **{CACHE_NAME: cache if use_cache else None},
        )


class DecoderForCausalLM(DecoderPreTrainedModel, GenerationMixin):
    """[`DecoderModel`] with a language-model head: logits over the vocabulary for the next token at every position.

    The head has no bias and shares its weight with the token embeddings when `config.tie_word_embeddings`.

    Args:
        config ([`DecoderConfig`]).
    """

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: DecoderConfig):
        super().__init__(config)
        self.model = DecoderModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear):
        self.lm_head = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        r"""Args: as [`DecoderModel.forward`], plus
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): `labels = input_ids`
                (padding set to -100); the model shifts them, so position t is scored on token t+1. The loss is the
                mean over the label tokens, or the sum divided by `num_items_in_batch` when the Trainer passes it
                (exact loss under gradient accumulation).
            logits_to_keep (`int` or `torch.Tensor`): keep the logits of the last `logits_to_keep` positions only
                (0 = all; `generate` passes 1), or of the given indices.

        Returns:
            [`CausalLMOutputWithPast`]: `loss`, `logits` `(batch_size, kept positions, vocab_size)`,
            `cache`, `hidden_states`, `attentions`.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            past_key_values=past_key_values,  # the model takes either name (and refuses both)
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])  # (B, T, V)

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
        )

    # generate() reads forward's signature at every decoding step of a model registered for the Auto classes (a
    # transformers check for remote code that expects `cache_position`): computed once here instead (~30 us a token)
    forward.__signature__ = inspect.signature(forward)
