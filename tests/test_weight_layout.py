"""``set_weight_layout("in_out")``: every linear weight stored as its transpose, for faster decoding (issue 9).

Only where the numbers sit in memory changes. These tests check that each family computes what it did (also
against stock GPT-2, and with the stacked Q/K/V copy, which follows the layout), that generation gives the same
tokens, that names, values, parameter objects, tying and checkpoints do not change, that training, ``.to()``
and ``load_state_dict`` keep the layout and give the numbers of the default layout, and that a wrong layout
name is refused with the valid ones.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tests.common import assert_close, ids_tensor
from tests.test_fused_qkv import (assert_same_generation, greedy, inputs, logits, make, products,
                                  self_attentions)
from w2vformer.modeling.attention import is_in_out

FAMILIES = ["decoder", "encoder", "seq2seq"]


def linear_weights(model) -> dict[str, torch.Tensor]:
    return {name: module.weight for name, module in model.named_modules() if type(module) is nn.Linear}


def test_is_in_out_reads_the_strides():
    weight = torch.randn(5, 3)  # (out, in) as nn.Linear makes it
    assert not is_in_out(weight)
    assert is_in_out(weight.t().contiguous().t())
    assert weight.t().contiguous().t().shape == (5, 3)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_in_out_layout_computes_the_same_logits_with_the_same_parameters(family, attn):
    model = make(family).eval()
    model.set_attn_implementation(attn)
    batch = inputs(family)
    expected = logits(model, batch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = {name: id(p) for name, p in model.named_parameters()}

    assert model.set_weight_layout("in_out") is model
    weights = linear_weights(model)
    assert weights and all(is_in_out(w) for w in weights.values()), "a linear weight kept nn.Linear's layout"
    assert {name: id(p) for name, p in model.named_parameters()} == params, "parameter objects were replaced"
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight, "the head came untied"
    after = model.state_dict()
    assert list(after) == list(state)
    for key, value in state.items():
        assert after[key].shape == value.shape and torch.equal(after[key], value), key
    assert_close(logits(model, batch), expected, atol=1e-5, msg=f"{family} {attn} in_out")

    model.set_weight_layout("out_in")
    assert all(w.is_contiguous() for w in linear_weights(model).values())
    assert_close(logits(model, batch), expected, atol=1e-5, msg="out_in again")


@pytest.mark.parametrize("fuse_first", [True, False], ids=["fuse-then-layout", "layout-then-fuse"])
def test_the_stacked_qkv_copy_follows_the_layout(fuse_first):
    model = make("seq2seq").eval()
    batch = inputs("seq2seq")
    expected, three = logits(model, batch), products(model, batch)
    if fuse_first:
        model.fuse_qkv_projections().set_weight_layout("in_out")
    else:
        model.set_weight_layout("in_out").fuse_qkv_projections()
    stacks = [m.stacked_qkv_weight for name, m in model.named_modules() if name.endswith("self_attn")]
    assert len(stacks) == self_attentions(model) and all(is_in_out(s) for s in stacks)
    assert_close(logits(model, batch), expected, atol=1e-5)
    assert products(model, batch) == three - 2 * self_attentions(model), "the stacked product was not used"
    model.set_weight_layout("out_in")
    assert all(m.stacked_qkv_weight.is_contiguous() for name, m in model.named_modules() if name.endswith("self_attn"))
    assert_close(logits(model, batch), expected, atol=1e-5, msg="back to out_in, fused")


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_decoder_generates_the_same_tokens(cache):
    model = make("decoder").eval()
    expected = greedy(model, cache)
    assert_same_generation(greedy(model.fuse_qkv_projections().set_weight_layout("in_out"), cache), expected)


def test_seq2seq_generates_the_same_tokens():
    model = make("seq2seq").eval()
    expected = greedy(model)
    assert_same_generation(greedy(model.set_weight_layout("in_out")), expected)


def test_matches_stock_gpt2_logits_and_generation():
    from tests.test_convert_gpt2 import stock_gpt2
    from w2vformer.conversion.gpt2 import from_stock

    stock = stock_gpt2("gelu_8_heads_3_layers")
    ours = from_stock(stock).fuse_qkv_projections().set_weight_layout("in_out")
    ids = ids_tensor((4, 6))
    with torch.no_grad():
        assert_close(ours(input_ids=ids).logits, stock(input_ids=ids).logits, atol=1e-4)
    kwargs = dict(attention_mask=torch.ones_like(ids), max_new_tokens=8, min_new_tokens=8, do_sample=False,
                  num_beams=1, pad_token_id=0)
    assert torch.equal(ours.generate(ids, **kwargs), stock.generate(ids, **kwargs))


def test_checkpoints_are_unchanged_and_loading_keeps_the_layout(tmp_path):
    model = make("decoder", initializer_range=0.2).eval().set_weight_layout("in_out")
    batch = inputs("decoder")
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    for key, value in model.state_dict().items():
        if key in saved:  # (a tied head is saved once)
            assert torch.equal(saved[key], value), key
    reloaded = type(model).from_pretrained(tmp_path).eval()
    assert not any(is_in_out(w) for w in linear_weights(reloaded).values()), "from_pretrained builds nn.Linear's"
    assert_close(logits(reloaded, batch), logits(model, batch), atol=1e-5)
    model.save_pretrained(tmp_path / "given", state_dict=model.state_dict())  # as Trainer saves its checkpoints
    assert load_file(tmp_path / "given" / "model.safetensors").keys() == saved.keys()

    model.load_state_dict(make("decoder").state_dict())  # copies into the parameters: the layout stays
    assert all(is_in_out(w) for w in linear_weights(model).values())
    assert_close(logits(model, batch), logits(make("decoder").eval(), batch), atol=1e-5, msg="after load_state_dict")


def test_training_keeps_the_layout_and_the_numbers():
    batch = inputs("decoder")
    models = {layout: make("decoder").set_weight_layout(layout) for layout in ("out_in", "in_out")}
    for model in models.values():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for step in range(2):
            torch.manual_seed(step)  # the same dropout masks for both models
            model(**batch, labels=batch["input_ids"]).loss.backward()
            for weight in linear_weights(model).values():
                assert weight.grad.stride() == weight.stride(), "the gradient does not take its weight's layout"
            optimizer.step()
            optimizer.zero_grad()
    assert all(is_in_out(w) for w in linear_weights(models["in_out"]).values()), "an optimizer step lost the layout"
    trained = dict(models["out_in"].named_parameters())
    for name, param in models["in_out"].named_parameters():
        assert_close(param, trained[name], atol=1e-5, msg=name)
    models["in_out"].to(torch.float64)
    assert all(is_in_out(w) and w.dtype == torch.float64 for w in linear_weights(models["in_out"]).values())


def test_a_wrong_layout_name_is_refused():
    model = make("decoder")
    with pytest.raises(ValueError, match=r"'transposed' is not one of \('out_in', 'in_out'\)"):
        model.set_weight_layout("transposed")
    assert not any(is_in_out(w) for w in linear_weights(model).values())
