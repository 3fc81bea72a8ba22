"""What every stock-checkpoint converter (bert.py, gpt2.py, bart.py) does the same way."""

from __future__ import annotations

import torch

__all__ = ["load_checked", "copy_runtime_settings"]


def load_checked(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Copy ``state_dict`` into ``model`` after checking that keys and shapes match one to one.

    Nothing is copied unless every check passes.

    Raises:
        ValueError: naming the missing / unexpected keys (first 8) or the tensors whose shapes differ.
    """
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state_dict)), sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{what}: {len(state_dict)} converted keys for {len(expected)} expected; "
            f"missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    wrong = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in state_dict.items()
             if v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"{what}: shape mismatch (converted vs expected) for {wrong[:8]}")
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(state_dict[key])


def copy_runtime_settings(source, target) -> None:
    """Give ``target`` the dtype, train/eval mode and attention kernel of ``source``."""
    target.to(next(source.parameters()).dtype)
    target.train(source.training)
    target.set_attn_implementation(source.config._attn_implementation)
