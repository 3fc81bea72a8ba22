"""Word2Vec (Mikolov et al. 2013) as a transformers model: CBOW and skip-gram, negative sampling or
hierarchical softmax.

    model = Word2VecModel(Word2VecConfig(vocab_size=V, loss="hierarchical_softmax"), token_counts=counts)
    out = model(center_ids=c, context_ids=o, negative_ids=n)      # out.loss, out.logits
    vectors = model.get_input_embeddings().weight                 # (V, D): the word vectors

Two matrices, as in the note and in word2vec's C tool:
- ``in_embed`` (V, D), word2vec's ``syn0``: token -> vector, the embedding matrix everyone keeps.
- ``out_embed`` decodes a vector back to tokens: (V, D) output vectors for negative sampling (``syn1neg``),
  or (V-1, D) inner-node vectors of a Huffman tree of the token counts for hierarchical softmax (``syn1``).

Shape legend: B batch, K negatives per example, W window, L longest Huffman code, V vocabulary, D vector size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_word2vec import Word2VecConfig


def build_huffman_tree(counts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Huffman codes and paths of every token, built as the word2vec C tool's ``CreateBinaryTree`` does.

    word2vec sorts the vocabulary by descending count, then merges the two smallest nodes V-1 times with
    two pointers (one walking the leaves from the rarest, one walking the inner nodes in creation order;
    on a tie the inner node is taken). The first merged node gets code 0, the second code 1. Inner node
    ``a`` (created by merge ``a``) is row ``a`` of ``out_embed``, so the root is row V-2. Here the tokens
    need not be sorted: they are sorted internally (stable, so equal counts keep id order, which is
    word2vec's order for a vocabulary sorted by count) and the result is returned in id order.

    Args:
        counts: (V,) non-negative token counts (list, numpy array or tensor), V >= 1.

    Returns:
        codes: (V, L) int8, ``codes[i, :lengths[i]]`` is token i's code read from the root (0 = first
            child, 1 = second); zero-padded.
        points: (V, L) int64, ``points[i, k]`` is the inner node (row of ``out_embed``) whose decision gives
            ``codes[i, k]``; ``points[i, 0]`` is the root V-2; zero-padded.
        lengths: (V,) int64 code lengths. L = lengths.max() (0 when V == 1).
    """
    counts = torch.as_tensor(counts).reshape(-1)
    if counts.is_floating_point() and not torch.isfinite(counts).all():
        raise ValueError("token counts must be finite")
    counts = counts.to(torch.int64).cpu()
    vocab_size = counts.numel()
    if vocab_size < 1:
        raise ValueError("build_huffman_tree needs at least one token count")
    if (counts < 0).any():
        raise ValueError(f"token counts must be >= 0, got {counts.min().item()}")
    if vocab_size == 1:
        return torch.zeros(1, 0, dtype=torch.int8), torch.zeros(1, 0, dtype=torch.int64), torch.zeros(1, dtype=torch.int64)

    order = torch.sort(-counts, stable=True).indices  # rank r -> token id (descending count)
    count = counts[order].tolist() + [0] * (vocab_size - 1)  # nodes: leaves 0..V-1 (by rank), inner V..2V-2
    parent = [0] * (2 * vocab_size - 1)
    binary = [0] * (2 * vocab_size - 1)
    pos1, pos2 = vocab_size - 1, vocab_size  # rarest unused leaf, oldest unused inner node
    for a in range(vocab_size - 1):
        pair = []
        for _ in range(2):  # the two smallest nodes; word2vec takes the inner node on a tie
            if pos1 >= 0 and (pos2 >= vocab_size + a or count[pos1] < count[pos2]):
                pair.append(pos1)
                pos1 -= 1
            else:
                pair.append(pos2)
                pos2 += 1
        min1, min2 = pair
        count[vocab_size + a] = count[min1] + count[min2]
        parent[min1] = parent[min2] = vocab_size + a
        binary[min2] = 1

    # Walk all leaves up to the root at once: up[h] = ancestor h levels above each leaf (the root is a fixed
    # point), so the loop runs L times over V leaves instead of sum(lengths) Python steps.
    root = 2 * vocab_size - 2
    parent_t = torch.tensor(parent, dtype=torch.int64)
    parent_t[root] = root
    binary_t = torch.tensor(binary, dtype=torch.int8)
    up = [torch.arange(vocab_size)]
    while (up[-1] != root).any():
        up.append(parent_t[up[-1]])
    up = torch.stack(up)  # (L+1, V) node ids
    lengths_by_rank = (up != root).sum(0)  # (V,)
    max_len = up.shape[0] - 1
    k = torch.arange(max_len)[None, :]  # (1, L)
    valid = k < lengths_by_rank[:, None]  # (V, L)
    leaf = torch.arange(vocab_size)[:, None]
    # codes[k] is the bit of the node k+1 steps below the root, i.e. (len-1-k) steps above the leaf;
    # points[k] is the inner node len-k steps above the leaf (points[0] = root).
    code_height = (lengths_by_rank[:, None] - 1 - k).clamp(min=0)
    point_height = (lengths_by_rank[:, None] - k).clamp(min=0)
    codes_by_rank = torch.where(valid, binary_t[up[code_height, leaf]], 0).to(torch.int8)
    points_by_rank = torch.where(valid, up[point_height, leaf] - vocab_size, 0)

    codes = torch.empty_like(codes_by_rank)
    points = torch.empty_like(points_by_rank)
    lengths = torch.empty_like(lengths_by_rank)
    codes[order], points[order], lengths[order] = codes_by_rank, points_by_rank, lengths_by_rank
    return codes, points, lengths


def _check_ids(name: str, ids: torch.Tensor | None, vocab_size: int) -> None:
    """Raise a clear ``ValueError`` for an id outside ``[0, vocab_size)`` (not an index error inside torch)."""
    if ids is None or ids.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = high if high >= vocab_size else low
        raise ValueError(
            f"{name} contains id {bad}, outside the vocabulary of size {vocab_size} (valid ids are "
            f"0..{vocab_size - 1}); check that the tokenizer and token counts match the model's config"
        )


@dataclass
class Word2VecOutput(ModelOutput):
    """Output of [`Word2VecModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`): mean over the batch of each example's loss (present when
            targets are given): negative sampling ``-log σ(u_o·h) - Σ_k log σ(-u_k·h)``, hierarchical softmax
            ``-Σ_j log σ((1 - 2 code_j) u_{point_j}·h)`` over the target's Huffman path.
        logits (`torch.FloatTensor`): scores ``u·h``; negative sampling: (B, 1 + K), column 0 the positive,
            then the negatives; hierarchical softmax: (B, L), one per node of the target's path (zero past
            its code length).
        hidden (`torch.FloatTensor` of shape `(B, D)`): the input-side vector h: ``in_embed[center]`` for
            skip-gram, the sum or mean of the context vectors for CBOW.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden: torch.FloatTensor | None = None


class Word2VecPreTrainedModel(PreTrainedModel):
    config_class = Word2VecConfig
    base_model_prefix = "word2vec"
    main_input_name = "center_ids"
    # forward takes no **kwargs, so Trainer neither passes num_items_in_batch nor skips its division of the
    # loss by gradient_accumulation_steps; saying so explicitly guards against a later **kwargs.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module):
        # word2vec's init: syn0 uniform in [-0.5/D, 0.5/D], syn1/syn1neg zeros. Seeded by config.seed so that a
        # fresh model is reproducible. Buffers are persistent (in the checkpoint), nothing to re-create here.
        if isinstance(module, Word2VecModel):
            dim = self.config.vector_size
            weight = module.in_embed.weight
            generator = None
            if weight.device.type == "cpu":
                generator = torch.Generator().manual_seed(self.config.seed)
            init.uniform_(weight, -0.5 / dim, 0.5 / dim, generator=generator)
            init.zeros_(module.out_embed.weight)


class Word2VecModel(Word2VecPreTrainedModel):
    """Word2Vec: an embedding matrix ``in_embed`` learnt by predicting words from words.

    Args:
        config ([`Word2VecConfig`]): sizes and training options.
        token_counts (`torch.LongTensor` of shape `(vocab_size,)`, *optional*): how often each token occurs in
            the training corpus; stored in the ``token_counts`` buffer (so the checkpoint knows the unigram
            distribution for negatives and for sorting word vectors by frequency). With hierarchical softmax
            the Huffman tree is built from them (``build_huffman_tree``) and sets ``config.max_code_length``.
            Without counts the buffer is zero and a hierarchical-softmax tree is built as if all counts were
            equal (unless ``config.max_code_length`` is set, as when loading a checkpoint, which fills the
            buffers).

    Buffers (persistent, saved with the weights): ``token_counts`` (V,) int64; hierarchical softmax only:
    ``hs_codes`` (V, L) int8, ``hs_points`` (V, L) int64, ``hs_code_lengths`` (V,) int64.
    """

    def __init__(self, config: Word2VecConfig, token_counts=None):
        super().__init__(config)
        vocab_size, dim = config.vocab_size, config.vector_size
        self.in_embed = nn.Embedding(vocab_size, dim)
        out_rows = vocab_size - 1 if config.loss == "hierarchical_softmax" else vocab_size
        self.out_embed = nn.Embedding(out_rows, dim)

        if token_counts is None:
            counts = torch.zeros(vocab_size, dtype=torch.int64)
        else:
            counts = torch.as_tensor(token_counts).reshape(-1)
            if counts.numel() != vocab_size:
                raise ValueError(
                    f"token_counts has {counts.numel()} entries but config.vocab_size is {vocab_size}; "
                    "pass one count per token id"
                )
            if counts.is_floating_point() and not torch.isfinite(counts).all():
                raise ValueError("token_counts must be finite")
            counts = counts.to(torch.int64).cpu()
            if (counts < 0).any():
                raise ValueError(f"token_counts must be >= 0, got {counts.min().item()}")
        self.register_buffer("token_counts", counts, persistent=True)

        if config.loss == "hierarchical_softmax":
            if token_counts is None and config.max_code_length is not None:
                # Loading: shapes from the config, values from the checkpoint.
                length = config.max_code_length
                codes = torch.zeros(vocab_size, length, dtype=torch.int8)
                points = torch.zeros(vocab_size, length, dtype=torch.int64)
                lengths = torch.zeros(vocab_size, dtype=torch.int64)
            else:
                codes, points, lengths = build_huffman_tree(counts if token_counts is not None else torch.ones(vocab_size))
                config.max_code_length = codes.shape[1]
            self.register_buffer("hs_codes", codes, persistent=True)
            self.register_buffer("hs_points", points, persistent=True)
            self.register_buffer("hs_code_lengths", lengths, persistent=True)

        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.in_embed

    def set_input_embeddings(self, value: nn.Embedding):
        self.in_embed = value

    def _context_vector(self, context_ids: torch.LongTensor, context_mask: torch.Tensor) -> torch.Tensor:
        """CBOW's h: sum (or mean, ``cbow_mean``) of the unmasked context vectors. (B, 2W) -> (B, D)."""
        mask = context_mask.to(self.in_embed.weight.dtype)
        h = (self.in_embed(context_ids) * mask[..., None]).sum(1)  # (B, D)
        if self.config.cbow_mean:
            h = h / mask.sum(1, keepdim=True).clamp(min=1)
        return h

    def forward(
        self,
        center_ids: torch.LongTensor | None = None,
        context_ids: torch.LongTensor | None = None,
        negative_ids: torch.LongTensor | None = None,
        context_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> Word2VecOutput | tuple:
        r"""Score a batch of (input, target) examples and return word2vec's loss.

        Skip-gram: the center word predicts one context word.
            center_ids (`torch.LongTensor` of shape `(B,)`): input words, h = in_embed[center_ids].
            context_ids (`torch.LongTensor` of shape `(B,)`): target words.
        CBOW: the context predicts the center word.
            context_ids (`torch.LongTensor` of shape `(B, 2W)`): context words, right-padded.
            context_mask (`torch.Tensor` of shape `(B, 2W)`, *optional*): 1 for real context words; default
                ``context_ids != config.pad_token_id``. Rows without any context word add no loss.
            center_ids (`torch.LongTensor` of shape `(B,)`): target words.
        negative_ids (`torch.LongTensor` of shape `(B, K)`): negative sampling only: sampled negatives; a
            negative equal to its example's target is ignored (as word2vec skips it).
        return_dict (`bool`, *optional*): return a tuple when False.

        Returns:
            [`Word2VecOutput`]: ``loss`` (when the target is given), ``logits``, ``hidden`` (B, D). Calling with
            only the inputs (``center_ids`` for skip-gram, ``context_ids`` for CBOW) returns just ``hidden``.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        for name, ids in (("center_ids", center_ids), ("context_ids", context_ids), ("negative_ids", negative_ids)):
            _check_ids(name, ids, config.vocab_size)
        if config.objective == "skipgram":
            if center_ids is None:
                raise ValueError("skip-gram needs center_ids (B,) as input")
            if center_ids.dim() != 1:
                raise ValueError(f"skip-gram center_ids must have shape (B,), got {tuple(center_ids.shape)}")
            h = self.in_embed(center_ids)  # (B, D)
            target = context_ids
            weight = None
        else:
            if context_ids is None:
                raise ValueError("CBOW needs context_ids (B, 2*window) as input")
            if context_ids.dim() != 2:
                raise ValueError(f"CBOW context_ids must have shape (B, 2*window), got {tuple(context_ids.shape)}")
            if context_mask is not None and context_mask.shape != context_ids.shape:
                raise ValueError(
                    f"context_mask shape {tuple(context_mask.shape)} differs from context_ids {tuple(context_ids.shape)}"
                )
            if context_mask is None:
                if config.pad_token_id is None:
                    context_mask = torch.ones_like(context_ids, dtype=torch.bool)
                else:
                    context_mask = context_ids != config.pad_token_id
            h = self._context_vector(context_ids, context_mask)
            target = center_ids
            weight = (context_mask.sum(1) > 0).to(h.dtype)  # (B,) rows with at least one context word

        loss = logits = None
        if target is not None:
            if target.shape != h.shape[:1]:
                raise ValueError(f"target ids must have shape ({h.shape[0]},), got {tuple(target.shape)}")
            if config.loss == "negative_sampling":
                loss, logits = self._negative_sampling_loss(h, target, negative_ids)
            else:
                loss, logits = self._hierarchical_softmax_loss(h, target)
            if weight is None:
                loss = loss.mean()
            else:
                loss = (loss * weight).sum() / weight.sum().clamp(min=1)
        if not return_dict:
            return tuple(v for v in (loss, logits, h) if v is not None)
        return Word2VecOutput(loss=loss, logits=logits, hidden=h)

    def _negative_sampling_loss(self, h, target, negative_ids):
        """-log σ(u_o·h) - Σ_k log σ(-u_k·h) per example. Returns (loss (B,), logits (B, 1+K))."""
        if negative_ids is None:
            raise ValueError("negative sampling needs negative_ids of shape (B, K); the collator draws them")
        if negative_ids.dim() != 2 or negative_ids.shape[0] != h.shape[0]:
            raise ValueError(f"negative_ids must have shape ({h.shape[0]}, K), got {tuple(negative_ids.shape)}")
        ids = torch.cat([target[:, None], negative_ids], dim=1)  # (B, 1+K)
        logits = torch.einsum("bkd,bd->bk", self.out_embed(ids), h)  # (B, 1+K)
        # -log σ(x) = softplus(-x): the positive wants x large, each negative wants x small
        pos = F.softplus(-logits[:, 0])
        neg = F.softplus(logits[:, 1:]) * (negative_ids != target[:, None]).to(h.dtype)
        return pos + neg.sum(1), logits

    def _hierarchical_softmax_loss(self, h, target):
        """-Σ_j log σ((1 - 2 code_j) u_{point_j}·h) over the target's path. Returns (loss (B,), logits (B, L))."""
        points = self.hs_points[target]  # (B, L)
        codes = self.hs_codes[target].to(h.dtype)  # (B, L)
        valid = (torch.arange(points.shape[1], device=h.device) < self.hs_code_lengths[target][:, None]).to(h.dtype)
        logits = torch.einsum("bld,bd->bl", self.out_embed(points), h) * valid  # (B, L)
        # word2vec: g = 1 - code - σ(f), i.e. code 0 is the positive label (-log σ(f)), code 1 the negative
        loss = F.softplus(-(1 - 2 * codes) * logits) * valid
        return loss.sum(1), logits


__all__ = ["Word2VecPreTrainedModel", "Word2VecModel", "Word2VecOutput", "build_huffman_tree"]
