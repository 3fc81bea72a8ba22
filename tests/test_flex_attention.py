"""``attn_implementation="flex_attention"`` gives the eager reference's numbers, in every family.

Flex attention runs on the CPU for inference (torch compiles its kernel on first use; backward on CPU is not
implemented by torch, so these run under ``no_grad``). Each family is checked with padding, so the masks that
transformers turns into block masks are exercised: causal + padding (decoder), bidirectional + padding
(encoder), and all three of encoder self-, decoder self- and cross-attention (encoder-decoder). Generation
with flex attention is left to GPU runs: torch 2.13's CPU code generation fails on flex decoding
(``CppCompileError: 'cur_kvSplitSize0' was not declared``), a torch bug, not one of ours.
"""

from __future__ import annotations

import torch

from common import BATCH, SEQ, assert_close, ids_tensor, random_padding_mask
from test_decoder import tiny_lm
from test_encoder import tiny as tiny_encoder
from test_seq2seq import VARIANTS as SEQ2SEQ_VARIANTS
from test_seq2seq import make_model, source_and_target


def _both(model, **inputs):
    with torch.no_grad():
        model.set_attn_implementation("eager")
        eager = model(**inputs).logits
        model.set_attn_implementation("flex_attention")
        flex = model(**inputs).logits
    return eager, flex


def test_decoder_flex_equals_eager_with_left_padding():
    mask = random_padding_mask(side="left")
    eager, flex = _both(tiny_lm("rotary"), input_ids=ids_tensor((BATCH, SEQ)), attention_mask=mask)
    assert_close(eager[mask.bool()], flex[mask.bool()])


def test_encoder_flex_equals_eager_with_right_padding():
    mask = random_padding_mask(side="right")
    eager, flex = _both(tiny_encoder(variant="bert"), input_ids=ids_tensor((BATCH, SEQ)), attention_mask=mask)
    assert_close(eager[mask.bool()], flex[mask.bool()])


def test_seq2seq_flex_equals_eager_with_padding():
    input_ids, mask, labels = source_and_target()
    eager, flex = _both(make_model(**SEQ2SEQ_VARIANTS["paper"]), input_ids=input_ids, attention_mask=mask, labels=labels)
    assert_close(eager, flex)
