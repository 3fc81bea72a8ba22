"""The encoder-decoder transformer (Vaswani et al. 2017, "Attention Is All You Need", Figure 1).

    config = Seq2SeqConfig(vocab_size=8000, hidden_size=256, encoder_layers=3, decoder_layers=3)
    model = Seq2SeqForConditionalGeneration(config)
    out = model.generate(input_ids, attention_mask=attention_mask, num_beams=4, max_new_tokens=32)

The encoder reads the source with bidirectional self-attention; the decoder writes the target one token at a
time with causal self-attention, and its cross-attention lets every target position query the encoder's
vectors (K and V from the source, Q from the target). One `shared` token embedding (the Word2Vec vectors,
typically) feeds the encoder, the decoder and, transposed, the output layer. With BART's options (learned
positions offset by 2, embedding LayerNorm, GELU; `w2vformer.conversion.bart`) the same code reproduces
`BartForConditionalGeneration` to float precision.

This file is copied into every checkpoint (``trust_remote_code``): standard library, torch, transformers and
same-folder modules only.

Shape legend: B batch, T target (query) length, S source (key) length, H heads, D head dim, C hidden size,
V vocab size.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.generation import GenerationMixin
from transformers.loss.loss_utils import ForMaskedLMLoss
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .attention import (CACHE_NAME, InferenceLayoutMixin, MultiHeadAttention, RotaryEmbedding, check_input_ids,
                        grow_in_place, pick_cache, sinusoidal_position_encoding)
from .configuration_seq2seq import Seq2SeqConfig


def shift_tokens_right(input_ids: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing: the decoder reads the target shifted one step right, starting with the start token.

    Args:
        input_ids (`torch.LongTensor` of shape `(B, T)`): target ids (labels; -100 marks ignored positions).
        pad_token_id (`int`): replaces -100 in the shifted ids.
        decoder_start_token_id (`int`): the first decoder input.

    Returns:
        `torch.LongTensor` of shape `(B, T)`: `[start, y_1, ..., y_{T-1}]`.
    """
    if pad_token_id is None or decoder_start_token_id is None:
        raise ValueError(
            f"shift_tokens_right needs pad_token_id and decoder_start_token_id, got {pad_token_id!r} and "
            f"{decoder_start_token_id!r}; set them in the config"
        )
    shifted = input_ids.new_zeros(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    shifted.masked_fill_(shifted == -100, pad_token_id)  # -100 (ignored label) is not a token id
    return shifted


def position_ids_from_mask(attention_mask: torch.Tensor | None, past_length: int, length: int, device) -> torch.Tensor:
    """Positions `past_length .. past_length + length - 1`, moved back by the number of left-padding tokens.

    A left-padded sequence then gets the same positions (0, 1, ...) as the unpadded one; right padding changes
    nothing (same as BART's plain `arange`).

    Args:
        attention_mask (`torch.Tensor` of shape `(B, past_length + length)`, *optional*): 1 = token, 0 = padding.
        past_length (`int`): tokens already in the cache.
        length (`int`): tokens in this call.

    Returns:
        `torch.LongTensor` of shape `(B, length)` (or `(1, length)` without a mask).
    """
    positions = torch.arange(past_length, past_length + length, device=device).unsqueeze(0)  # (1, T)
    if attention_mask is None or attention_mask.dim() != 2:
        return positions
    num_left_pad = (attention_mask.cumsum(-1) == 0).sum(-1, keepdim=True)  # (B, 1)
    return (positions - num_left_pad).clamp(min=0)


class Seq2SeqEncoderLayer(GradientCheckpointingLayer):
    """One encoder layer: bidirectional self-attention, then the position-wise feed-forward network.

    post-norm (paper, BART): `x = LayerNorm(x + Sublayer(x))`; pre-norm: `x = x + Sublayer(LayerNorm(x))`.
    """

    def __init__(self, config: Seq2SeqConfig, layer_idx: int):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout
        self.self_attn = MultiHeadAttention(config, layer_idx=layer_idx, is_causal=False)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """Args: hidden_states `(B, S, C)`; attention_mask for `(B, 1, S, S)`; rotary `(cos, sin)`. Returns `(B, S, C)`."""
        # Self Attention
        residual = hidden_states
        if self.pre_norm:
            hidden_states = self.self_attn_layer_norm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states, attention_mask=attention_mask, position_embeddings=position_embeddings, **kwargs
        )
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = residual + hidden_states
        if not self.pre_norm:
            hidden_states = self.self_attn_layer_norm(hidden_states)

        # Fully Connected
        residual = hidden_states
        if self.pre_norm:
            hidden_states = self.final_layer_norm(hidden_states)
        hidden_states = self.activation_fn(self.fc1(hidden_states))
        hidden_states = nn.functional.dropout(hidden_states, p=self.activation_dropout, training=self.training)
        hidden_states = self.fc2(hidden_states)
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = residual + hidden_states
        if not self.pre_norm:
            hidden_states = self.final_layer_norm(hidden_states)
        return hidden_states


class Seq2SeqDecoderLayer(GradientCheckpointingLayer):
    """One decoder layer: causal self-attention, cross-attention over the encoder output, feed-forward network.

    post-norm (paper, BART): `x = LayerNorm(x + Sublayer(x))`; pre-norm: `x = x + Sublayer(LayerNorm(x))`.
    """

    def __init__(self, config: Seq2SeqConfig, layer_idx: int):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout
        self.self_attn = MultiHeadAttention(config, layer_idx=layer_idx, is_causal=True)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder_attn = MultiHeadAttention(config, layer_idx=layer_idx, is_causal=False)
        self.encoder_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """Args: hidden_states `(B, T, C)`; attention_mask for `(B, 1, T, past + T)`; encoder_hidden_states
        `(B, S, C)`; encoder_attention_mask for `(B, 1, T, S)`; an `EncoderDecoderCache` as `cache` (or as
        `past_key_values`, its name before transformers 5.24). Returns `(B, T, C)`."""
        cache = pick_cache(cache, past_key_values)
        # Self Attention
        residual = hidden_states
        if self.pre_norm:
            hidden_states = self.self_attn_layer_norm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states,
            attention_mask=attention_mask,
            cache=cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = residual + hidden_states
        if not self.pre_norm:
            hidden_states = self.self_attn_layer_norm(hidden_states)

        # Cross-Attention
        if encoder_hidden_states is not None:
            residual = hidden_states
            if self.pre_norm:
                hidden_states = self.encoder_attn_layer_norm(hidden_states)
            hidden_states, _ = self.encoder_attn(
                hidden_states,
                attention_mask=encoder_attention_mask,
                key_value_states=encoder_hidden_states,
                cache=cache,
                **kwargs,
            )
            hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
            hidden_states = residual + hidden_states
            if not self.pre_norm:
                hidden_states = self.encoder_attn_layer_norm(hidden_states)

        # Fully Connected
        residual = hidden_states
        if self.pre_norm:
            hidden_states = self.final_layer_norm(hidden_states)
        hidden_states = self.activation_fn(self.fc1(hidden_states))
        hidden_states = nn.functional.dropout(hidden_states, p=self.activation_dropout, training=self.training)
        hidden_states = self.fc2(hidden_states)
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = residual + hidden_states
        if not self.pre_norm:
            hidden_states = self.final_layer_norm(hidden_states)
        return hidden_states


class Seq2SeqPreTrainedModel(InferenceLayoutMixin, PreTrainedModel):
    """Weight initialisation, attention-kernel support and the embedding step shared by encoder and decoder."""

    config_class = Seq2SeqConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Seq2SeqEncoderLayer", "Seq2SeqDecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, Seq2SeqForConditionalGeneration):
            init.zeros_(module.final_logits_bias)

    def _init_positions(self, config: Seq2SeqConfig) -> None:
        """Create the embedding-step modules of an encoder or decoder stack."""
        self.embed_scale = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(
                config.max_position_embeddings + config.position_offset, config.hidden_size
            )
        elif config.position_embedding_type == "rotary":
            self.rotary_emb = RotaryEmbedding(config.hidden_size // config.num_attention_heads, config.rope_theta)
        if config.embedding_layer_norm:
            self.layernorm_embedding = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # pre-norm stacks end with a LayerNorm (the residual stream itself is never normalised)
        if config.norm_position == "pre":
            self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def _embed(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, past_length: int):
        """Token vectors + positions (+ LayerNorm, dropout). Returns `(hidden (B, T, C), rotary (cos, sin) or None)`."""
        config = self.config
        end = past_length + inputs_embeds.shape[1]
        if config.position_embedding_type == "learned" and end > config.max_position_embeddings:
            raise ValueError(
                f"sequence of length {end} is longer than max_position_embeddings={config.max_position_embeddings} "
                f"(learned positions); truncate the input (e.g. tokenizer(..., truncation=True, "
                f"max_length={config.max_position_embeddings})) or lower max_new_tokens"
            )
        hidden_states, rotary = inputs_embeds, None
        if config.position_embedding_type == "learned":
            hidden_states = hidden_states + self.embed_positions(position_ids + config.position_offset)
        elif config.position_embedding_type == "sinusoidal":
            pe = sinusoidal_position_encoding(position_ids, config.hidden_size, dtype=inputs_embeds.dtype)
            hidden_states = hidden_states + pe
        else:
            rotary = self.rotary_emb(inputs_embeds, position_ids.expand(inputs_embeds.shape[0], -1))
        if config.embedding_layer_norm:
            hidden_states = self.layernorm_embedding(hidden_states)
        hidden_states = nn.functional.dropout(hidden_states, p=config.dropout, training=self.training)
        return hidden_states, rotary


class Seq2SeqEncoder(Seq2SeqPreTrainedModel):
    """The encoder stack: `config.encoder_layers` [`Seq2SeqEncoderLayer`]s over the source tokens."""

    _can_record_outputs = {"hidden_states": Seq2SeqEncoderLayer, "attentions": MultiHeadAttention}

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        self._init_positions(config)
        self.layers = nn.ModuleList([Seq2SeqEncoderLayer(config, i) for i in range(config.encoder_layers)])
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutput:
        r"""Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`): source token ids.
            attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*): 1 = token, 0 = padding.
            inputs_embeds (`torch.Tensor` of shape `(batch_size, source_length, hidden_size)`, *optional*):
                token vectors to use instead of `input_ids` (taken as they are, not scaled).

        Returns:
            `BaseModelOutput` with `last_hidden_state` `(batch_size, source_length, hidden_size)`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds to the encoder")
        if inputs_embeds is None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids) * self.embed_scale  # (B, S, C)
        position_ids = position_ids_from_mask(attention_mask, 0, inputs_embeds.shape[1], inputs_embeds.device)
        hidden_states, rotary = self._embed(inputs_embeds, position_ids, 0)

        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
        )
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, position_embeddings=rotary, **kwargs)
        if self.config.norm_position == "pre":
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


class Seq2SeqDecoder(Seq2SeqPreTrainedModel):
    """The decoder stack: `config.decoder_layers` [`Seq2SeqDecoderLayer`]s over the target tokens."""

    _can_record_outputs = {
        "hidden_states": Seq2SeqDecoderLayer,
        "attentions": OutputRecorder(MultiHeadAttention, index=1, layer_name="self_attn"),
        "cross_attentions": OutputRecorder(MultiHeadAttention, index=1, layer_name="encoder_attn"),
    }

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        self._init_positions(config)
        self.layers = nn.ModuleList([Seq2SeqDecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        r"""Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`): decoder input ids (only the
                new ones when `cache` holds the earlier ones).
            attention_mask (`torch.Tensor` of shape `(batch_size, past_length + target_length)`, *optional*):
                1 = token, 0 = padding; the causal mask is added automatically.
            encoder_hidden_states (`torch.Tensor` of shape `(batch_size, source_length, hidden_size)`).
            encoder_attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*).
            cache (`EncoderDecoderCache`, *optional*): keys and values of earlier steps (`past_key_values`, its
                name before transformers 5.24, is accepted too).
            inputs_embeds (`torch.Tensor` of shape `(batch_size, target_length, hidden_size)`, *optional*).
            use_cache (`bool`, *optional*): create and return a cache.

        Returns:
            `BaseModelOutputWithPastAndCrossAttentions` with `last_hidden_state` `(batch_size, target_length,
            hidden_size)` and `cache` (`past_key_values` before transformers 5.24).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of decoder_input_ids or decoder_inputs_embeds to the decoder")
        if inputs_embeds is None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids) * self.embed_scale  # (B, T, C)

        cache = pick_cache(cache, past_key_values)
        if use_cache and cache is None:
            cache = EncoderDecoderCache(DynamicCache(config=self.config), DynamicCache(config=self.config))
        grow_in_place(cache)  # append new keys/values in place, not by concatenating the cache
        past_length = cache.get_seq_length() if cache is not None else 0
        # no mask (what generate passes): positions are past_length + 0..T-1, and the causal mask needs no padding mask
        position_ids = position_ids_from_mask(attention_mask, past_length, inputs_embeds.shape[1], inputs_embeds.device)
        hidden_states, rotary = self._embed(inputs_embeds, position_ids, past_length)

        self_attn_cache = cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache
        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            **{CACHE_NAME: self_attn_cache},
        )
        encoder_attention_mask = create_bidirectional_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                causal_mask,
                encoder_hidden_states,  # positional: activation checkpointing passes only positionals through
                encoder_attention_mask=encoder_attention_mask,
                position_embeddings=rotary,
                **{CACHE_NAME: cache},  # the name GradientCheckpointingLayer clears
                **kwargs,
            )
        if self.config.norm_position == "pre":
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=hidden_states, **{CACHE_NAME: cache})


class Seq2SeqModel(Seq2SeqPreTrainedModel):
    """Encoder and decoder over one `shared` token embedding (no output layer).

    Example:
        >>> model = Seq2SeqModel(Seq2SeqConfig(vocab_size=99, hidden_size=32, num_attention_heads=4))
        >>> model(input_ids, decoder_input_ids=decoder_input_ids).last_hidden_state.shape   # (B, T, 32)
    """

    _tied_weights_keys = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }
    _keys_to_ignore_on_load_unexpected = [r"final_logits_bias"]  # loading the base of an LM-head checkpoint

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.encoder = Seq2SeqEncoder(config)
        self.decoder = Seq2SeqDecoder(config)
        if config.tie_word_embeddings:
            # One module for the three uses, not only one parameter: FSDP2 puts a parameter in exactly one
            # sharding unit, and separate encoder/decoder embedding modules would claim it twice.
            self.encoder.embed_tokens = self.decoder.embed_tokens = self.shared
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        self.encoder.embed_tokens = self.shared
        self.decoder.embed_tokens = self.shared

    def get_encoder(self, modality: str | None = None) -> Seq2SeqEncoder:
        return self.encoder

    def get_decoder(self) -> Seq2SeqDecoder:
        return self.decoder

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqModelOutput:
        r"""Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, source_length)`): source ids.
            attention_mask (`torch.Tensor` of shape `(batch_size, source_length)`, *optional*): 1 = token, 0 = padding.
            decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*): decoder
                inputs; if neither these nor `decoder_inputs_embeds` are given, `input_ids` shifted right (BART).
            decoder_attention_mask (`torch.Tensor` of shape `(batch_size, target_length)`, *optional*).
            encoder_outputs (`BaseModelOutput` or `tuple`, *optional*): a precomputed encoder output
                (`last_hidden_state` first), as `generate` passes it.
            cache (`EncoderDecoderCache`, *optional*; `past_key_values` before transformers 5.24), inputs_embeds,
                decoder_inputs_embeds, use_cache.

        Returns:
            `Seq2SeqModelOutput`: `last_hidden_state` `(batch_size, target_length, hidden_size)` (decoder),
            `encoder_last_hidden_state` `(batch_size, source_length, hidden_size)`, `cache`, and the
            requested hidden states / attentions.
        """
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass decoder_input_ids (or decoder_inputs_embeds, or labels to the LM head model)")
            decoder_input_ids = shift_tokens_right(input_ids, self.config.pad_token_id, self.config.decoder_start_token_id)

        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
            )

        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs[0],
            encoder_attention_mask=attention_mask,
            cache=cache,
            past_key_values=past_key_values,  # the decoder takes either name (and refuses both)
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            **{CACHE_NAME: getattr(decoder_outputs, CACHE_NAME)},
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class Seq2SeqForConditionalGeneration(Seq2SeqPreTrainedModel, GenerationMixin):
    """[`Seq2SeqModel`] with the output layer: `logits = decoder_output @ shared^T + final_logits_bias`.

    Trains on `(input_ids, labels)` (decoder inputs are `labels` shifted right), generates with `generate`.

    Example:
        >>> model = Seq2SeqForConditionalGeneration(Seq2SeqConfig(vocab_size=99, hidden_size=32, num_attention_heads=4))
        >>> loss = model(input_ids, attention_mask=mask, labels=labels).loss
        >>> out = model.generate(input_ids, attention_mask=mask, num_beams=3, max_new_tokens=10)
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    _keys_to_ignore_on_load_missing = ["final_logits_bias"]

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        self.model = Seq2SeqModel(config)
        # a per-token output bias kept as a buffer (BART's `final_logits_bias`): zeros unless converted
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_encoder(self, modality: str | None = None) -> Seq2SeqEncoder:
        return self.model.encoder

    def get_decoder(self) -> Seq2SeqDecoder:
        return self.model.decoder

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Resize the shared embedding (and the tied output layer), then `final_logits_bias` to match."""
        new_embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self._resize_final_logits_bias(new_embeddings.weight.shape[0])
        return new_embeddings

    def _resize_final_logits_bias(self, new_num_tokens: int) -> None:
        old = self.final_logits_bias
        if new_num_tokens <= old.shape[-1]:
            new = old[:, :new_num_tokens]
        else:
            new = torch.cat([old, old.new_zeros(1, new_num_tokens - old.shape[-1])], dim=1)
        self.register_buffer("final_logits_bias", new.contiguous())

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """`labels` shifted right (used by `DataCollatorForSeq2Seq`). Args: labels `(B, T)`. Returns `(B, T)`."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqLMOutput:
        r"""Args: as [`Seq2SeqModel.forward`], plus
            labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*): target ids, -100 where
                no loss is wanted. `decoder_input_ids` default to `labels` shifted right (not shifted again in
                the loss: position t predicts `labels[:, t]`).

        Returns:
            `Seq2SeqLMOutput`: `loss` (mean cross-entropy over the labelled tokens, or their sum divided by
            `num_items_in_batch` when the Trainer passes it), `logits` `(batch_size, target_length, vocab_size)`,
            `cache`, and the requested hidden states / attentions.
        """
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)

        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # (B, T, V)
        logits = logits + self.final_logits_bias.to(logits.dtype)

        loss = None
        if labels is not None:
            # no shift here (labels are already aligned with the decoder inputs); summed and divided by
            # num_items_in_batch under gradient accumulation so every token weighs the same
            loss = ForMaskedLMLoss(
                logits, labels, logits.shape[-1], num_items_in_batch=kwargs.get("num_items_in_batch")
            )

        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )

    # generate() reads forward's signature at every decoding step of a model registered for the Auto classes (a
    # transformers check for remote code that expects `cache_position`): computed once here instead (~30 us a token)
    forward.__signature__ = inspect.signature(forward)


__all__ = [
    "Seq2SeqPreTrainedModel",
    "Seq2SeqEncoder",
    "Seq2SeqDecoder",
    "Seq2SeqModel",
    "Seq2SeqForConditionalGeneration",
    "shift_tokens_right",
]
