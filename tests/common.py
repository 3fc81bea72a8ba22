"""Shared check helpers for the tests (flat functions, no mixin tree).

Tiny configs use odd sizes (batch 13, sequence 7, vocab 99, hidden 32, heads 2-4, intermediate 37,
2 layers) so that a swapped dimension fails loudly.
"""

from __future__ import annotations

import torch

BATCH, SEQ, VOCAB, HIDDEN, INTERMEDIATE = 13, 7, 99, 32, 37


def ids_tensor(shape, vocab_size=VOCAB, low=0, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, vocab_size, shape, generator=g)


def random_padding_mask(batch=BATCH, seq=SEQ, side="right", seed=0) -> torch.Tensor:
    """A 0/1 attention mask where every row keeps at least one token; rows pad on ``side``."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, seq + 1, (batch,), generator=g)
    lengths[0] = seq  # at least one unpadded row
    pos = torch.arange(seq).expand(batch, seq)
    if side == "right":
        return (pos < lengths[:, None]).long()
    return (pos >= (seq - lengths)[:, None]).long()


def assert_close(a: torch.Tensor, b: torch.Tensor, atol=1e-5, rtol=0.0, msg=""):
    assert a.shape == b.shape, f"{msg} shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    assert torch.allclose(a.float(), b.float(), atol=atol, rtol=rtol), f"{msg} max abs diff {diff:.3g} > {atol}"


def save_and_reload(model, tmp_path, auto_class=None):
    """save_pretrained into tmp_path, reload with ``auto_class`` (default: the model's class), eval mode."""
    model.save_pretrained(tmp_path)
    cls = auto_class or type(model)
    return cls.from_pretrained(tmp_path).eval()


def check_loss_reaches_every_parameter(model, loss: torch.Tensor, allow: tuple[str, ...] = ()):
    """Backprop ``loss`` and assert every trainable parameter (except names containing ``allow``) gets a
    non-zero gradient."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and not any(a in n for a in allow) and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    assert not missing, f"no gradient reaches: {missing}"


def enable_checkpointing(model) -> None:
    """Activation checkpointing on: ``activation_checkpointing_enable`` (transformers 5.2x) or its earlier name
    ``gradient_checkpointing_enable`` (transformers 5.17, as on the GPU machines)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable()
    else:
        model.gradient_checkpointing_enable()


def is_checkpointing(model) -> bool:
    """``is_activation_checkpointing`` (transformers 5.2x) or ``is_gradient_checkpointing`` (earlier 5.x)."""
    if hasattr(model, "is_activation_checkpointing"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing
