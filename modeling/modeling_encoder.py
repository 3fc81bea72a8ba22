"""The encoder-only transformer: the encoder of "Attention Is All You Need" (Vaswani et al. 2017), with the
options that make it BERT (Devlin et al. 2019), and its masked-LM and classification heads.

    config = EncoderConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    model = EncoderForMaskedLM(config)
    logits = model(input_ids, attention_mask=attention_mask).logits      # (B, T, V)

Each layer lets every token look at every other token (bidirectional attention: no causal mask, only the
padding mask), then passes each token through the same two-layer feed-forward block. Around both sub-layers
runs the residual stream: post-norm ``x = LN(x + Sublayer(x))`` as in the paper and BERT, or pre-norm
``x = x + Sublayer(LN(x))`` with a final LayerNorm after the last layer.

This file is copied into every checkpoint (``trust_remote_code``): standard library, torch, transformers
and same-folder modules only.

Shape legend: B batch, T sequence length, S key length (= T here), H heads, D head dim, C hidden size,
V vocabulary size, L number of labels.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .attention import (InferenceLayoutMixin, MultiHeadAttention, RotaryEmbedding, check_input_ids,
                        sinusoidal_position_encoding)
from .configuration_encoder import EncoderConfig

__all__ = [
    "EncoderPreTrainedModel",
    "EncoderModel",
    "EncoderForMaskedLM",
    "EncoderForSequenceClassification",
    "EncoderForTokenClassification",
]


def default_position_ids(attention_mask: torch.Tensor | None, batch: int, length: int, device) -> torch.Tensor:
    """Positions 0, 1, 2, ... counted from each row's first real token.

    With right padding (or none) this is ``arange(T)`` for every row, exactly as BERT does. With left
    padding the first real token still gets position 0, so a left-padded row gives the same outputs as the
    unpadded sequence (BERT would shift it; pass ``position_ids`` yourself to reproduce that).

    Returns:
        `torch.LongTensor` of shape `(B, T)`.
    """
    positions = torch.arange(length, device=device).expand(batch, length)
    if attention_mask is None or attention_mask.dim() != 2:
        return positions
    first_real = attention_mask.long().argmax(dim=-1, keepdim=True)  # index of the first 1 in each row: (B, 1)
    return (positions - first_real).clamp(min=0)


class EncoderEmbeddings(nn.Module):
    """Token vector (times sqrt(C) if ``scale_embedding``) + token-type vector + position vector, then an
    optional LayerNorm and dropout. Positions are a learned table, the paper's sinusoids, or nothing here
    (rotary positions rotate Q and K inside attention instead)."""

    def __init__(self, config):
        super().__init__()
        self.position_embedding_type = config.position_embedding_type
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.embed_scale = math.sqrt(config.hidden_size) if config.scale_embedding else 1.0
        self.embed_token_types = (
            nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size > 0 else None
        )
        self.embed_positions = (
            nn.Embedding(config.max_position_embeddings + config.position_offset, config.hidden_size)
            if config.position_embedding_type == "learned"
            else None
        )
        self.layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.embedding_layer_norm else None
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, inputs_embeds, token_type_ids, position_ids) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, T, C)
        hidden_states = inputs_embeds * self.embed_scale
        if self.embed_token_types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(position_ids)
            hidden_states = hidden_states + self.embed_token_types(token_type_ids)
        if self.position_embedding_type == "learned":
            hidden_states = hidden_states + self.embed_positions(position_ids)
        elif self.position_embedding_type == "sinusoidal":
            pe = sinusoidal_position_encoding(position_ids, hidden_states.shape[-1], dtype=hidden_states.dtype)
            hidden_states = hidden_states + pe
        if self.layer_norm is not None:
            hidden_states = self.layer_norm(hidden_states)
        return self.dropout(hidden_states)


class EncoderMLP(nn.Module):
    """Position-wise feed-forward block: ``FFN(x) = act(x W1 + b1) W2 + b2`` (paper eq. 2), same for every token."""

    def __init__(self, config):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.act(self.fc1(hidden_states)))  # (B, T, intermediate_size)
        return self.fc2(hidden_states)  # (B, T, C)


class EncoderLayer(GradientCheckpointingLayer):
    """Self-attention then feed-forward, each wrapped in the residual stream (post-norm or pre-norm)."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.self_attn = MultiHeadAttention(config, layer_idx=layer_idx, is_causal=False)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = EncoderMLP(config)
        self.mlp_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states, attention_mask=None, position_embeddings=None, **kwargs) -> torch.Tensor:
        """Args: hidden_states `(B, T, C)`; attention_mask from ``create_bidirectional_mask``; position_embeddings:
        rotary ``(cos, sin)`` or None. Returns `(B, T, C)`."""
        if self.pre_norm:
            # Self Attention: x = x + Dropout(Attn(LN(x)))
            residual = hidden_states
            hidden_states = self.self_attn_layer_norm(hidden_states)
            hidden_states, _ = self.self_attn(
                hidden_states, attention_mask=attention_mask, position_embeddings=position_embeddings, **kwargs
            )
            hidden_states = residual + self.dropout(hidden_states)
            # Fully Connected: x = x + Dropout(FFN(LN(x)))
            residual = hidden_states
            hidden_states = self.mlp(self.mlp_layer_norm(hidden_states))
            hidden_states = residual + self.dropout(hidden_states)
        else:
            # Self Attention: x = LN(x + Dropout(Attn(x)))   (paper section 5.4, BERT)
            residual = hidden_states
            hidden_states, _ = self.self_attn(
                hidden_states, attention_mask=attention_mask, position_embeddings=position_embeddings, **kwargs
            )
            hidden_states = self.self_attn_layer_norm(residual + self.dropout(hidden_states))
            # Fully Connected: x = LN(x + Dropout(FFN(x)))
            residual = hidden_states
            hidden_states = self.mlp(hidden_states)
            hidden_states = self.mlp_layer_norm(residual + self.dropout(hidden_states))
        return hidden_states


class EncoderPooler(nn.Module):
    """BERT's pooler: ``tanh(W h_0 + b)`` on the first token's ([CLS]) final vector."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))  # (B, C)


class EncoderLMHead(nn.Module):
    """Masked-LM head: optional transform (dense + activation + LayerNorm, BERT), then ``out_proj`` to V
    scores with a bias; ``out_proj.weight`` is the input embedding matrix when ``tie_word_embeddings``."""

    def __init__(self, config):
        super().__init__()
        if config.mlm_head_transform:
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.act = ACT2FN[config.hidden_act]
            self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        else:
            self.dense = self.act = self.layer_norm = None
        self.out_proj = nn.Linear(config.hidden_size, config.vocab_size, bias=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            hidden_states = self.layer_norm(self.act(self.dense(hidden_states)))
        return self.out_proj(hidden_states)  # (B, T, V)


class EncoderPreTrainedModel(InferenceLayoutMixin, PreTrainedModel):
    """Base class: config class, weight initialisation (normal(0, initializer_range) for Linear and
    Embedding, zero biases, unit LayerNorms, from transformers), attention back-ends, checkpointing."""

    config_class = EncoderConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    # layers only: the embeddings stay in the root unit with the MLM head tied to them (FSDP, device_map)
    _no_split_modules = ["EncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": EncoderLayer, "attentions": MultiHeadAttention}


class EncoderModel(EncoderPreTrainedModel):
    """The bare encoder: embeddings, ``num_hidden_layers`` layers, a final LayerNorm for pre-norm, an optional pooler.

    Args:
        config ([`EncoderConfig`]): the model configuration.
        add_pooling_layer (`bool`, *optional*): build the pooler; defaults to ``config.use_pooler``
            (the masked-LM and token-classification heads pass False, as BERT does).
    """

    def __init__(self, config: EncoderConfig, add_pooling_layer: bool | None = None):
        super().__init__(config)
        self.embeddings = EncoderEmbeddings(config)
        head_dim = config.hidden_size // config.num_attention_heads
        self.rotary_emb = (
            RotaryEmbedding(head_dim, base=config.rope_theta) if config.position_embedding_type == "rotary" else None
        )
        self.layers = nn.ModuleList(EncoderLayer(config, layer_idx=i) for i in range(config.num_hidden_layers))
        self.final_layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_position == "pre" else None
        )
        add_pooling_layer = config.use_pooler if add_pooling_layer is None else add_pooling_layer
        self.pooler = EncoderPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.embed_tokens = value

    def _check_inputs(self, input_ids, inputs_embeds, token_type_ids, position_ids) -> None:
        """Clear errors for inputs that would otherwise fail deep inside torch (or silently on GPU)."""
        config = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        length = input_ids.shape[1] if input_ids is not None else inputs_embeds.shape[1]
        check_input_ids(input_ids, config.vocab_size)
        if torch.compiler.is_compiling():  # the checks below read tensor values: not inside compiled graphs
            return
        if config.position_embedding_type == "learned":
            longest = length if position_ids is None else int(position_ids.max()) + 1
            if longest > config.max_position_embeddings:
                raise ValueError(
                    f"sequence of length {length} (largest position {longest - 1}) is longer than "
                    f"max_position_embeddings={config.max_position_embeddings} of this model's learned "
                    f"positions; truncate the input (tokenizer(..., truncation=True, "
                    f"max_length={config.max_position_embeddings})) or use sinusoidal or rotary positions"
                )
        if token_type_ids is not None and config.type_vocab_size > 0 and token_type_ids.numel():
            low, high = int(token_type_ids.min()), int(token_type_ids.max())
            if low < 0 or high >= config.type_vocab_size:
                bad = high if high >= config.type_vocab_size else low
                raise ValueError(
                    f"token_type_ids contains {bad}, but type_vocab_size is {config.type_vocab_size} "
                    f"(valid types are 0..{config.type_vocab_size - 1})"
                )

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        r"""Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): token ids.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 for real
                tokens, 0 for padding (either side).
            token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): segment
                ids (0 for A, 1 for B); all 0 when omitted; ignored when ``type_vocab_size == 0``.
            position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): defaults to
                positions counted from each row's first real token (see ``default_position_ids``).
            inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*):
                token vectors instead of ``input_ids`` (as ``get_input_embeddings()(input_ids)`` gives them).
            output_attentions, output_hidden_states, return_dict: as everywhere in transformers.

        Returns:
            [`BaseModelOutputWithPooling`]: ``last_hidden_state`` `(B, T, C)`, ``pooler_output`` `(B, C)` when
            the model has a pooler, ``hidden_states`` (embeddings + one per layer, each `(B, T, C)`) and
            ``attentions`` (one A' per layer, `(B, H, T, T)`, eager attention only) when asked for.
        """
        self._check_inputs(input_ids, inputs_embeds, token_type_ids, position_ids)
        batch, length = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if position_ids is None:
            position_ids = default_position_ids(attention_mask, batch, length, device)
        position_ids = position_ids + self.config.position_offset
        if self.config.type_vocab_size == 0:
            token_type_ids = None  # the paper's encoder has no segments: a tokenizer's all-zero types are ignored

        hidden_states = self.embeddings(input_ids, inputs_embeds, token_type_ids, position_ids)  # (B, T, C)
        # padding mask in the format the attention kernel wants (additive float for eager, bool/None for sdpa)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask)
        position_embeddings = self.rotary_emb(hidden_states, position_ids) if self.rotary_emb is not None else None

        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=mask, position_embeddings=position_embeddings, **kwargs)
        if self.final_layer_norm is not None:
            hidden_states = self.final_layer_norm(hidden_states)

        pooled = self.pooler(hidden_states) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)


class EncoderForMaskedLM(EncoderPreTrainedModel):
    """Encoder with the masked-LM head: predicts the original token at every position (loss only where
    ``labels != -100``, i.e. at the masked positions ``DataCollatorForLanguageModeling`` chose).

    Args:
        config ([`EncoderConfig`]): the model configuration.
    """

    _tied_weights_keys = {"lm_head.out_proj.weight": "model.embeddings.embed_tokens.weight"}

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.model = EncoderModel(config, add_pooling_layer=False)
        self.lm_head = EncoderLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.out_proj

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.out_proj = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        r"""Args: as [`EncoderModel.forward`], plus
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): target ids, -100
                where no prediction is scored. The loss is summed and divided by ``num_items_in_batch`` when the
                Trainer passes it (correct under gradient accumulation), else averaged.

        Returns:
            [`MaskedLMOutput`]: ``loss``, ``logits`` `(B, T, V)`, ``hidden_states``, ``attentions``.
        """
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class EncoderForSequenceClassification(EncoderPreTrainedModel):
    """Encoder with a linear classifier on the pooled first token (the pooler's output if the config has
    one, else the first token's final vector). ``config.problem_type`` picks the loss: ``"regression"``
    (MSE, ``num_labels == 1``), ``"single_label_classification"`` (cross-entropy on integer labels) or
    ``"multi_label_classification"`` (BCE on float 0/1 labels of shape `(B, L)`); inferred when unset.

    Args:
        config ([`EncoderConfig`]): the model configuration (``num_labels``, ``id2label``, ``problem_type``).
    """

    # every problem type's loss is a mean over the batch: let the Trainer divide by the accumulation steps
    accepts_loss_kwargs = False

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = EncoderModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.dropout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""Args: as [`EncoderModel.forward`], plus
            labels (`torch.Tensor` of shape `(batch_size,)` or `(batch_size, num_labels)`, *optional*).

        Returns:
            [`SequenceClassifierOutput`]: ``loss``, ``logits`` `(B, L)`, ``hidden_states``, ``attentions``.
        """
        kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        pooled = outputs.pooler_output if outputs.pooler_output is not None else outputs.last_hidden_state[:, 0]
        logits = self.classifier(self.dropout(pooled))  # (B, L)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class EncoderForTokenClassification(EncoderPreTrainedModel):
    """Encoder with a linear classifier on every token (tagging: NER, POS); labels -100 are not scored.

    Args:
        config ([`EncoderConfig`]): the model configuration (``num_labels``, ``id2label``).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = EncoderModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.dropout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        r"""Args: as [`EncoderModel.forward`], plus
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): -100 = not scored.
                Summed and divided by ``num_items_in_batch`` when the Trainer passes it, else averaged.

        Returns:
            [`TokenClassifierOutput`]: ``loss``, ``logits`` `(B, T, L)`, ``hidden_states``, ``attentions``.
        """
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, T, L)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, self.config, **kwargs)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
