"""Attention, as the seed note computes it, shared by the encoder, decoder and encoder-decoder families.

    attn = MultiHeadAttention(config, layer_idx=0, is_causal=True)
    out, weights = attn(hidden_states, attention_mask=mask)      # out: (B, T, C), weights: (B, H, T, S)

The word vectors X (T rows) are multiplied by Wq, Wk, Wv to give Q, K, V; A = Q K^T scores every pair of
tokens (an inner product: related vectors score high, orthogonal ones zero); dividing by sqrt(d) brings
the variance of the scores back to 1 so that softmax does not saturate; a row-wise softmax gives A'; and
A' V has T rows again: each token's vector corrected by its context. Multi-head attention runs H of these
side by side on slices of width D = C / H and concatenates the results.

This file is copied into every checkpoint (``trust_remote_code``): standard library, torch and
transformers only.

Shape legend: B batch, T query length, S key length, H heads, D head dim, C hidden size.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

__all__ = [
    "eager_attention_forward",
    "MultiHeadAttention",
    "InferenceLayoutMixin",
    "WEIGHT_LAYOUTS",
    "is_in_out",
    "contiguous_tensors",
    "sinusoidal_position_encoding",
    "RotaryEmbedding",
    "apply_rotary_pos_emb",
    "check_input_ids",
    "GrowableLayer",
    "grow_in_place",
    "CACHE_NAME",
    "pick_cache",
]

# transformers 5.24 renamed the KV cache from `past_key_values` to `cache`: the keyword `generate` passes to
# forward, the field of the outputs, the keyword of the mask builders and the one `GradientCheckpointingLayer`
# clears. The models take either name and speak the installed library's: ``**{CACHE_NAME: cache}``.
CACHE_NAME = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def pick_cache(cache, past_key_values):
    """The KV cache passed as `cache` or as `past_key_values` (its name before transformers 5.24)."""
    if past_key_values is None:
        return cache
    if cache is not None:
        raise ValueError(
            "got a KV cache both as `cache` and as `past_key_values` (its name before transformers 5.24); "
            "pass it once, as `cache`"
        )
    return past_key_values


def eager_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    r"""Scaled dot-product attention written out step by step: ``softmax(Q K^T / sqrt(d)) V``.

    This is the reference implementation (``attn_implementation="eager"``); sdpa, flex and flash are
    drop-ins with the same signature from transformers' attention interface.

    Args:
        module: the calling attention module (read for ``training``).
        query (`torch.Tensor` of shape `(B, H, T, D)`): Q.
        key (`torch.Tensor` of shape `(B, H, S, D)`): K.
        value (`torch.Tensor` of shape `(B, H, S, D)`): V.
        attention_mask (`torch.Tensor`, *optional*): added to the scores, shape broadcastable to `(B, H, T, S)`:
            0 where a query may look, a very large negative number where it may not (transformers'
            ``create_causal_mask`` / ``create_bidirectional_mask`` build it). A boolean mask (True = look) is
            accepted too.
        scaling (`float`, *optional*): defaults to ``1 / sqrt(D)``.
        dropout (`float`): dropout probability on A' (applied only in training).

    Returns:
        `(output, weights)`: output of shape `(B, T, H, D)` and the attention weights A' of shape `(B, H, T, S)`.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(-2, -1))  # A = Q K^T: (B, H, T, S)
    scores = scores * scaling  # divide by sqrt(d): scores back to unit variance
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            # finfo.min, not -inf: a row with every key masked gives uniform weights, never NaN
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)  # A', row-wise
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value)  # A' V: (B, H, T, D)
    return output.transpose(1, 2).contiguous(), weights  # (B, T, H, D)


def _restack_after_load(module, incompatible_keys) -> None:
    """``load_state_dict`` post-hook of a fused [`MultiHeadAttention`] (a function, so the module still pickles)."""
    module._restack()


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``q_proj``, ``k_proj``, ``v_proj`` and ``o_proj``.

    One class serves self-attention (``key_value_states=None``) and cross-attention (keys and values from
    the encoder's ``key_value_states``), as in BART. ``is_causal`` is set explicitly on every instance:
    transformers' sdpa and flash paths read it.

    Args:
        config: a w2vformer config (reads ``hidden_size``, ``num_attention_heads``, ``attention_dropout``,
            ``attention_bias`` and ``_attn_implementation``).
        layer_idx (`int`): index of the layer, the key into the KV cache.
        is_causal (`bool`): True for decoder self-attention, False for encoder and cross-attention.
    """

    def __init__(self, config, layer_idx: int, is_causal: bool):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_causal = is_causal
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        bias = getattr(config, "attention_bias", True)
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self._stack_hook = None  # after fuse_qkv(): the hook that rebuilds the stacked copy after load_state_dict
        self._stack_sources = None  # the parameters the copy was made from
        self._stack_key = None  # and their (version, address) then

    def fuse_qkv(self) -> None:
        """Stack Wq, Wk and Wv (and their biases) into one `(3C, C)` matrix, so that self-attention computes Q, K and
        V in one matrix product instead of three whenever no gradient is needed (``generate``, pipelines,
        ``torch.no_grad()``). The same numbers as three products, up to float rounding, in one call instead of
        three: compiled generation at batch 1 ran 4-9% faster on CPU, uncompiled within noise
        (bench/results/transformers.md).

        ``q_proj``, ``k_proj`` and ``v_proj`` stay the parameters and stay what is saved: the stack is a copy kept
        as a non-persistent buffer (left out of ``state_dict`` and checkpoints, moved by ``.to()``), rebuilt when
        one of them changes in place or gets new data (an optimizer step, ``load_state_dict``), and never used
        when gradients are needed, nor while a projection is wrapped (a PEFT LoRA layer) or has forward hooks:
        those run the three products, so adapters and hooks work as without it. Only for self-attention:
        cross-attention's K and V come from another input. Costs memory for a second copy of the three
        matrices; ``unfuse_qkv`` frees it.

        A ``torch.compile``d graph cannot check the weights' versions: it uses the copy as last rebuilt, which
        happens at every uncompiled call (``generate`` runs the prompt uncompiled), on switching to eval mode and
        after ``load_state_dict``. After editing the weights in place by hand, call ``fuse_qkv`` again before a
        compiled call; so too after assigning a new parameter object to a projection.
        """
        if self._stack_hook is None:
            self._stack_hook = self.register_load_state_dict_post_hook(_restack_after_load)
        self._restack()

    def unfuse_qkv(self) -> None:
        """Undo [`fuse_qkv`]: drop the stacked copy and compute Q, K and V with three products again."""
        if self._stack_hook is not None:
            del self.stacked_qkv_weight, self.stacked_qkv_bias
            self._stack_hook.remove()
        self._stack_sources = self._stack_hook = None

    def train(self, mode: bool = True):
        """``nn.Module.train``; switching to eval mode also rebuilds a stacked copy (see [`fuse_qkv`]), so that a
        compiled evaluation after training steps sees the trained weights."""
        super().train(mode)
        if not mode:
            self._restack()
        return self

    def _restack(self) -> None:
        """(Re)build the stacked copy from the three projections' current parameters (after fuse_qkv)."""
        if self._stack_hook is None:
            return
        projections = (self.q_proj, self.k_proj, self.v_proj)
        self._stack_sources = [p for proj in projections for p in (proj.weight, proj.bias) if p is not None]
        with torch.no_grad():
            weight = torch.cat([proj.weight for proj in projections])  # (3C, C)
            if all(is_in_out(proj.weight) for proj in projections):  # the stack takes its sources' layout
                weight = weight.t().contiguous().t()  # (see set_weight_layout)
            bias = None if self.q_proj.bias is None else torch.cat([proj.bias for proj in projections])  # (3C,)
        self.register_buffer("stacked_qkv_weight", weight, persistent=False)
        self.register_buffer("stacked_qkv_bias", bias, persistent=False)
        self._stack_key = tuple((p._version, p.data_ptr()) for p in self._stack_sources)

    def _stacked_qkv(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The stacked weight and bias to use now, rebuilt if a projection changed since; None when not fused or
        when gradients must reach the three parameters."""
        sources = self._stack_sources
        if sources is None or (torch.is_grad_enabled() and sources[0].requires_grad):
            return None
        modules = self._modules  # (the dict itself: nn.Module attribute lookup costs more than this check)
        for proj in (modules["q_proj"], modules["k_proj"], modules["v_proj"]):
            if type(proj) is not nn.Linear or proj._forward_hooks or proj._forward_pre_hooks:
                return None  # a wrapped projection (a LoRA adapter) or one with hooks: it must run itself
        if not torch.compiler.is_compiling():  # (a compiled graph cannot read versions: see fuse_qkv)
            if tuple((p._version, p.data_ptr()) for p in sources) != self._stack_key:
                self._restack()
        return self._buffers["stacked_qkv_weight"], self._buffers["stacked_qkv_bias"]

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        key_value_states: torch.Tensor | None = None,
        cache=None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args:
            hidden_states (`torch.Tensor` of shape `(B, T, C)`): the queries' token vectors.
            attention_mask: additive mask for `(B, 1, T, S)` (or whatever the chosen kernel takes).
            key_value_states (`torch.Tensor` of shape `(B, S, C)`, *optional*): encoder output for cross-attention.
            cache: a transformers ``Cache`` (``DynamicCache``/``StaticCache``, or ``EncoderDecoderCache`` in a
                seq2seq decoder), updated in place.
            position_embeddings: rotary ``(cos, sin)``, each `(B, T, D)`, applied to Q and K of self-attention.

        Returns:
            `(output, weights)`: `(B, T, C)` and A' `(B, H, T, S)` (None for kernels that do not return it).
        """
        is_cross = key_value_states is not None
        hidden_shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        stacked = None if is_cross else self._stacked_qkv()  # after fuse_qkv(), outside training
        if stacked is not None:  # Q, K and V of the same input in one product: X [Wq; Wk; Wv]^T, split in three
            query, key, value = nn.functional.linear(hidden_states, *stacked).chunk(3, dim=-1)
        else:
            query = self.q_proj(hidden_states)
        query = query.view(hidden_shape).transpose(1, 2)  # (B, H, T, D)

        part = cache  # the (part of the) cache this attention reads and appends to
        reuse_cross = False
        if isinstance(cache, EncoderDecoderCache):
            part = cache.cross_attention_cache if is_cross else cache.self_attention_cache
            reuse_cross = is_cross and cache.is_updated.get(self.layer_idx, False)

        if reuse_cross:
            # the encoder output does not change while generating: its K and V were computed at step one
            key = part.layers[self.layer_idx].keys
            value = part.layers[self.layer_idx].values
        else:
            source = key_value_states if is_cross else hidden_states
            if stacked is None:
                key, value = self.k_proj(source), self.v_proj(source)
            kv_shape = (*source.shape[:-1], -1, self.head_dim)
            key = key.view(kv_shape).transpose(1, 2)  # (B, H, S, D)
            value = value.view(kv_shape).transpose(1, 2)
            if position_embeddings is not None and not is_cross:
                query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
            if part is not None:
                key, value = part.update(key, value, self.layer_idx)
                if is_cross:
                    cache.is_updated[self.layer_idx] = True

        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            **kwargs,
        )
        output = output.reshape(*hidden_states.shape[:-1], -1).contiguous()  # merge heads: (B, T, C)
        return self.o_proj(output), weights


WEIGHT_LAYOUTS = ("out_in", "in_out")


def is_in_out(weight: torch.Tensor) -> bool:
    """Whether a linear layer's `(out, in)` weight is stored as its transpose: `(in, out)` row-major (the
    ``"in_out"`` layout of [`InferenceLayoutMixin.set_weight_layout`]; a `(1, 1)` matrix counts as both)."""
    return weight.dim() == 2 and weight.stride() == (1, weight.shape[0])


def contiguous_tensors(state_dict: dict) -> dict:
    """``state_dict`` with each non-contiguous tensor (an ``"in_out"`` weight) replaced by a contiguous copy, one
    copy for tensors that shared memory (a tied head stays recognisably tied): what safetensors and transformers'
    search for tied weights can read."""
    copies, out = {}, {}
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.device.type != "meta" and not value.is_contiguous():
            where = (value.data_ptr(), tuple(value.shape), value.stride())
            if where not in copies:
                copies[where] = value.contiguous()
            value = copies[where]
        out[key] = value
    return out


class InferenceLayoutMixin:
    """``fuse_qkv_projections()`` / ``unfuse_qkv_projections()`` and ``set_weight_layout()`` for a model built of
    [`MultiHeadAttention`]s: how the weights are held in memory for fast inference, never what they are."""

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``, also after ``set_weight_layout("in_out")``: weights stored transposed
        are written from contiguous copies (the file holds the same `(out, in)` matrices either way)."""
        if len(args) < 2:  # (the state_dict is save_pretrained's third positional argument)
            state_dict = kwargs.get("state_dict")
            if state_dict is None and not all(p.is_contiguous() for p in self.parameters()):
                state_dict = self.state_dict()
            if state_dict is not None:
                kwargs["state_dict"] = contiguous_tensors(state_dict)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def fuse_qkv_projections(self):
        """Compute Q, K and V of every self-attention with one matrix product instead of three when no gradient is
        needed (``generate``, pipelines, ``torch.no_grad()``): same outputs up to float rounding, faster where
        calls dominate (compiled generation at batch 1: bench/bench_transformers.py). Parameters and checkpoints are
        unchanged; each layer keeps a stacked copy of Wq, Wk, Wv (more memory: 3 C x C per layer) that follows
        in-place updates of the weights: at every uncompiled call, on switching to eval mode and after
        ``load_state_dict`` (a ``torch.compile``d graph cannot check; call this again after editing the weights
        by hand). See [`MultiHeadAttention.fuse_qkv`].

        Returns:
            the model itself, so ``model = AutoModelForCausalLM.from_pretrained(path).fuse_qkv_projections()``.
        """
        for name, module in self.named_modules():
            if isinstance(module, MultiHeadAttention) and name.rsplit(".", 1)[-1] == "self_attn":
                module.fuse_qkv()  # (not the seq2seq decoder's encoder_attn: its K and V come from another input)
        return self

    def unfuse_qkv_projections(self):
        """Undo [`fuse_qkv_projections`] and free the stacked copies. Returns the model itself."""
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.unfuse_qkv()
        return self

    def set_weight_layout(self, layout: str):
        """Store every linear layer's weight matrix `W` `(out, in)` in ``layout``: ``"in_out"`` keeps it as its
        transpose, `(in, out)` row-major (the layout of GPT-2's ``Conv1D``), ``"out_in"`` as ``nn.Linear`` makes it.

        Only the memory layout changes: each weight keeps its shape, values, name and parameter object, so outputs
        (up to float rounding), ``state_dict`` and saved checkpoints are the same, and training, ``.to()`` and
        ``load_state_dict`` keep the layout. What changes is speed on CPU: a product with a few rows of input
        (decoding) reads ``"in_out"`` weights faster, most of all the output head's, the largest product of a
        decoding step. With [`fuse_qkv_projections`] too, batch-1 greedy decoding on the benchmark's small decoder
        ran 1.23x stock GPT-2's speed (bench/results/transformers.md). A head tied to the token embeddings takes
        the layout with them: a lookup then reads strided columns, a few microseconds a decoded token. Training
        steps and other large products gain nothing from it. A stacked Q/K/V copy follows its sources' layout.

        It is a float32 option. In bfloat16 and float16 on CPU it works the other way. On the benchmark's machine
        (an AVX2 CPU without native bfloat16), products with ``"in_out"`` weights ran 3-12x slower, and greedy
        decoding in bfloat16 2.6-4.5x slower. GPT-2's ``Conv1D`` pays that price there; ours as built does not.
        On a GPU, cuBLAS takes either layout as it is; the speed there has not been measured.

        ``from_pretrained`` builds weights in ``nn.Linear``'s layout: call this after loading, e.g.
        ``model = AutoModelForCausalLM.from_pretrained(path).fuse_qkv_projections().set_weight_layout("in_out")``.

        Args:
            layout (`str`): ``"in_out"`` or ``"out_in"`` (``nn.Linear``'s, the default).

        Returns:
            the model itself.
        """
        if layout not in WEIGHT_LAYOUTS:
            raise ValueError(
                f"weight layout {layout!r} is not one of {WEIGHT_LAYOUTS}: 'in_out' stores each linear weight "
                f"(out, in) as its transpose, 'out_in' as nn.Linear does"
            )
        transpose = layout == "in_out"
        with torch.no_grad():
            for module in self.modules():
                if type(module) is nn.Linear and is_in_out(module.weight) != transpose:
                    weight = module.weight  # (the same parameter object: optimizers and tied modules keep it)
                    weight.data = weight.data.t().contiguous().t() if transpose else weight.data.contiguous()
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module._restack()  # (a stacked copy, if any, follows)
        return self


def sinusoidal_position_encoding(position_ids: torch.Tensor, dim: int, dtype=torch.float32) -> torch.Tensor:
    """The original Transformer's positions (Vaswani et al. 2017, section 3.5), computed on the fly.

        PE(pos, 2i)   = sin(pos / 10000^(2i / dim))
        PE(pos, 2i+1) = cos(pos / 10000^(2i / dim))

    Computed from ``position_ids`` at every call (no buffer), so any length works.

    Args:
        position_ids (`torch.LongTensor` of shape `(B, T)`).
        dim (`int`): the hidden size C (even or odd).

    Returns:
        `torch.Tensor` of shape `(B, T, C)`.
    """
    half = (dim + 1) // 2
    inv_freq = torch.exp(
        torch.arange(half, device=position_ids.device, dtype=torch.float32) * (-2.0 * math.log(10000.0) / dim)
    )
    angles = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq  # (B, T, ceil(C/2))
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # interleave: sin at 2i, cos at 2i+1
    return pe[..., :dim].to(dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021): returns ``(cos, sin)`` for given positions.

    Positions are relative by construction, so any length works. No buffers (meta-device loading safe).
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: any tensor of the target dtype/device; position_ids `(B, T)`. Returns cos, sin `(B, T, D)`."""
        inv_freq = 1.0 / (
            self.base ** (torch.arange(0, self.head_dim, 2, device=x.device, dtype=torch.float32) / self.head_dim)
        )
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Rotate Q and K (`(B, H, T, D)`) by their positions' angles (cos, sin `(B, T, D)`)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, D)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def check_input_ids(input_ids: torch.Tensor | None, vocab_size: int) -> None:
    """Raise a clear ``ValueError`` for a token id outside ``[0, vocab_size)`` (instead of an index error
    deep inside torch, or a device-side assert on GPU)."""
    if input_ids is None or input_ids.numel() == 0:
        return
    if torch.compiler.is_compiling():  # data-dependent check: skip inside torch.compile graphs
        return
    low, high = torch.aminmax(input_ids)  # one pass over the ids, not two (min, max)
    low, high = int(low), int(high)
    if low < 0 or high >= vocab_size:
        bad = high if high >= vocab_size else low
        raise ValueError(
            f"input_ids contains token id {bad}, outside the vocabulary of size {vocab_size} "
            f"(valid ids are 0..{vocab_size - 1}); check that the tokenizer matches the model, or call "
            f"model.resize_token_embeddings(len(tokenizer))"
        )


class GrowableLayer(DynamicLayer):
    """A ``DynamicLayer`` that appends each step's keys and values in place instead of concatenating.

    transformers' ``DynamicLayer`` grows by ``torch.cat([cached, new])`` at every decoding step, so every step
    copies the whole cache: a step with 1000 tokens cached copies 1000 keys and values per layer. This layer
    keeps the same public state, ``keys`` and ``values`` of shape `(B, H, S, D)` holding exactly the S tokens
    seen, as views into buffers with spare room behind them, and writes new tokens into that room. When the room
    runs out it moves to buffers a 32nd larger (and at least ``MIN_ROOM`` tokens larger): appending then copies
    an amortised 32 tokens a step instead of all of them, and the cache holds at most a 32nd more than it must,
    plus ``MIN_ROOM`` tokens.

    A cache under ``MIN_BYTES`` (256 KiB) a tensor is concatenated as ``DynamicLayer`` does: on CPU, appending in
    place from the first token made 128-token generations (caches of ~150 KB) 1-2.5% slower, and paid from
    ~256 KiB on (decoding steps 1.5-5% faster there, 3-10% at 1 MiB; bench/bench_transformers.py). Anything that
    replaces ``keys``/``values`` (``crop``, beam reordering, offloading, ``batch_select_indices``) is picked up
    at the next update, which then copies once into new buffers. Tokens already returned are never written
    again, so views handed out earlier stay valid. Where the buffers cannot be written in place (the new keys
    need gradients, or ``torch.compile`` is tracing), it concatenates.
    """

    MIN_ROOM = 16
    MIN_BYTES = 1 << 18  # a smaller cache is concatenated: copying it costs less than appending in place
    _room = None  # (key buffer, value buffer, the keys view handed out, the values view handed out)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """Append `(B, H, T, D)` keys and values; return all of them, `(B, H, S + T, D)`, as DynamicLayer does."""
        if not self._appends_in_place(key_states, value_states):
            self._room = None
            return super().update(key_states, value_states, *args, **kwargs)
        cached, new = self.keys.shape[-2], key_states.shape[-2]
        room = self._room
        if (
            room is None
            or room[2] is not self.keys  # replaced since the last update (crop, beam reordering, offloading, ...)
            or room[3] is not self.values
            or cached + new > room[0].shape[-2]
            or (room[0].is_inference() and not torch.is_inference_mode_enabled())
        ):
            room = None  # (holds the old buffers: let them go while moving)
            room = self._new_buffers(cached + new)
        key_buffer, value_buffer = room[0], room[1]
        key_buffer.narrow(-2, cached, new).copy_(key_states)
        value_buffer.narrow(-2, cached, new).copy_(value_states)
        self.keys = key_buffer.narrow(-2, 0, cached + new)
        self.values = value_buffer.narrow(-2, 0, cached + new)
        self._room = (key_buffer, value_buffer, self.keys, self.values)
        return self.keys, self.values

    def _appends_in_place(self, key_states: torch.Tensor, value_states: torch.Tensor) -> bool:
        """False where this update concatenates instead: the first tokens, a cache under ``MIN_BYTES`` a tensor,
        new keys that need gradients, ``torch.compile`` tracing, or keys that do not match the cached ones."""
        return (
            self.is_initialized
            and (self._room is not None or self.keys.numel() * self.keys.element_size() >= self.MIN_BYTES)
            and not torch.compiler.is_compiling()
            and not (torch.is_grad_enabled() and (key_states.requires_grad or value_states.requires_grad))
            and key_states.shape[:-2] == self.keys.shape[:-2]  # (cat raises the clear error)
            and key_states.dtype == self.keys.dtype
            and key_states.device == self.keys.device
        )

    def _new_buffers(self, needed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Move the cached tokens into buffers with room for ``needed`` tokens and a 32nd more (at least MIN_ROOM).

        Keys first, then values, each old buffer let go before the next new one is made: at most one tensor's
        worth more is held while moving, as for one ``torch.cat``."""
        self._room = None
        cached = self.keys.shape[-2]
        size = needed + max(self.MIN_ROOM, needed // 32)
        buffers = []
        for name in ("keys", "values"):
            tensor = getattr(self, name)
            buffer = tensor.new_empty((*tensor.shape[:-2], size, tensor.shape[-1]))
            buffer.narrow(-2, 0, cached).copy_(tensor)
            del tensor
            setattr(self, name, buffer.narrow(-2, 0, cached))
            buffers.append(buffer)
        return buffers[0], buffers[1]

    def reset(self) -> None:
        self._room = None
        super().reset()


def grow_in_place(cache) -> None:
    """Make a ``DynamicCache`` (or the self-attention half of an ``EncoderDecoderCache``) append in place.

    Swaps every plain ``DynamicLayer`` of the cache for a [`GrowableLayer`] holding the same state, and makes a
    cache that creates its layers on first use create ``GrowableLayer`` ones. Other caches (``StaticCache``,
    sliding-window or quantized layers, offloading caches) are left as they are. Called at the start of the
    decoder's forward, so ``generate``'s cache and a cache the caller built both benefit.
    """
    if isinstance(cache, EncoderDecoderCache):
        cache = cache.self_attention_cache
    if not isinstance(cache, DynamicCache) or cache.offloading or torch.compiler.is_compiling():
        return
    if cache.layer_class_to_replicate is DynamicLayer:
        cache.layer_class_to_replicate = GrowableLayer
    for i, layer in enumerate(cache.layers):
        if type(layer) is DynamicLayer:
            grown = GrowableLayer.__new__(GrowableLayer)
            grown.__dict__.update(layer.__dict__)
            cache.layers[i] = grown
