"""The decoders' KV cache appends in place (``GrowableLayer``) instead of concatenating at every step.

It must behave exactly like transformers' ``DynamicLayer``: the same keys and values after any sequence of
appends, crops, beam reorderings and batch edits; views handed out earlier never change; autograd still works;
and generation (greedy, beam, sampling, assisted and prompt-lookup decoding) gives the stock GPT-2 and BART
tokens while the buffers are outgrown at nearly every step (``MIN_ROOM`` lowered to 2).
"""

from __future__ import annotations

import copy

import pytest
import torch
from common import ids_tensor
from test_convert_bart import inputs as bart_inputs
from test_convert_bart import make_stock as stock_bart
from test_convert_gpt2 import stock_gpt2
from transformers import DynamicCache, StaticCache
from transformers.cache_utils import DynamicLayer, EncoderDecoderCache

from w2vformer.conversion import bart, gpt2
from w2vformer.modeling.attention import CACHE_NAME, GrowableLayer, grow_in_place

B, H, D = 3, 2, 5


@pytest.fixture(autouse=True)
def in_place_from_the_start(monkeypatch):
    """Append in place however small the cache (by default, caches under 256 KiB a tensor are concatenated)."""
    monkeypatch.setattr(GrowableLayer, "MIN_BYTES", 0)


@pytest.fixture
def small_room(monkeypatch):
    """Buffers with room for 2 more tokens (a 32nd of a short cache is less): outgrown every other step."""
    monkeypatch.setattr(GrowableLayer, "MIN_ROOM", 2)


def kv(t: int, seed: int, batch: int = B):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, H, t, D, generator=g), torch.randn(batch, H, t, D, generator=g)


def assert_same_layer(grown, plain):
    assert grown.get_seq_length() == plain.get_seq_length()
    assert torch.equal(grown.keys, plain.keys) and torch.equal(grown.values, plain.values)


@pytest.mark.parametrize("min_room", [1, 3, 128])
def test_appends_equal_dynamic_layer_and_never_rewrite_returned_tokens(monkeypatch, min_room):
    monkeypatch.setattr(GrowableLayer, "MIN_ROOM", min_room)
    grown, plain = GrowableLayer(), DynamicLayer()
    handed_out = []  # (view returned earlier, a copy of what it held then)
    for step, t in enumerate([7, 1, 1, 3, 1, 1, 1, 5, 1, 1, 2, 1, 1, 1, 1, 40, 1, 1]):
        k, v = kv(t, step)
        got, expected = grown.update(k, v), plain.update(k, v)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        assert_same_layer(grown, plain)
        handed_out.append((got[0], got[0].clone()))
    for view, then in handed_out:
        assert torch.equal(view, then)
    # in place: the last two appends went into the buffer made for the 40 (a 32nd of 68 tokens: room for 2)
    assert grown.keys.untyped_storage().data_ptr() == handed_out[-2][0].untyped_storage().data_ptr()


def test_small_caches_are_concatenated_until_min_bytes(monkeypatch):
    monkeypatch.setattr(GrowableLayer, "MIN_BYTES", 10 * B * H * D * 4)  # 10 tokens of float32
    grown, plain = GrowableLayer(), DynamicLayer()
    in_place = []
    for step in range(14):
        k, v = kv(4 if step == 0 else 1, step)
        grown.update(k, v), plain.update(k, v)
        assert_same_layer(grown, plain)
        in_place.append(grown._room is not None)
    # the first 4 tokens, then appends to 4, 5, ... 9 cached tokens: concatenated; to 10 and more: in place
    assert in_place == [False] * 7 + [True] * 7


@pytest.mark.parametrize("min_room", [2, 128])
def test_replaced_state_is_taken_up_at_the_next_append(monkeypatch, min_room):
    monkeypatch.setattr(GrowableLayer, "MIN_ROOM", min_room)
    grown, plain = GrowableLayer(), DynamicLayer()
    beams = torch.tensor([2, 0, 0])
    edits = [
        lambda layer: layer.crop(-2),
        lambda layer: layer.reorder_cache(beams),
        lambda layer: layer.batch_select_indices(torch.tensor([0, 2])),
        lambda layer: layer.batch_repeat_interleave(2),
        lambda layer: None,
        lambda layer: layer.crop(-1),
    ]
    for step, edit in enumerate(edits):
        for t in (4 if step == 0 else 1, 1, 2):
            k, v = kv(t, 10 * step + t, grown.keys.shape[0] if grown.is_initialized else B)
            grown.update(k, v), plain.update(k, v)
            assert_same_layer(grown, plain)
        view, then = grown.keys, grown.keys.clone()
        edit(grown), edit(plain)
        assert_same_layer(grown, plain)
        k, v = kv(1, 100 + step, grown.keys.shape[0])
        grown.update(k, v), plain.update(k, v)
        assert_same_layer(grown, plain)
        assert torch.equal(view, then), step  # a crop's freed slots are not written while a view still shows them
    grown.reset(), plain.reset()  # (transformers 5.2x empties the layer, 5.17 zeroes it: either way, the same)
    assert grown.get_seq_length() == plain.get_seq_length()
    k, v = kv(3, 7, grown.keys.shape[0] if grown.keys is not None and grown.keys.dim() == 4 else B)
    assert torch.equal(grown.update(k, v)[0], plain.update(k, v)[0])


def test_gradients_flow_through_the_cache_as_with_concatenation():
    grads = []
    for cls in (GrowableLayer, DynamicLayer):
        layer = cls()
        steps = [tuple(x.requires_grad_() for x in kv(t, t)) for t in (3, 1, 1, 2)]
        loss = 0
        for k, v in steps:  # every step's keys and values are used, as attention uses them
            keys, values = layer.update(k, v)
            loss = loss + keys.pow(2).sum() + (values * keys.shape[-2]).sin().sum()
        loss.backward()
        grads.append([g for k, v in steps for g in (k.grad, v.grad)])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_inference_mode_prefill_then_no_grad_appends():
    layer, plain = GrowableLayer(), DynamicLayer()
    with torch.inference_mode():
        for t in (4, 1):  # the second append moves into a buffer made in inference mode
            k, v = kv(t, t)
            layer.update(k, v), plain.update(k, v)
    with torch.no_grad():
        k, v = kv(1, 5)
        layer.update(k, v), plain.update(k, v)  # an inference tensor cannot be written here: a new buffer
    assert_same_layer(layer, plain)


def test_deepcopy_of_a_grown_cache_is_independent(small_room):
    layer = GrowableLayer()
    for t in (4, 1, 1):
        layer.update(*kv(t, t))
    twin = copy.deepcopy(layer)
    before = layer.keys.clone()
    twin.update(*kv(1, 50))
    assert torch.equal(layer.keys, before) and twin.get_seq_length() == layer.get_seq_length() + 1
    layer.update(*kv(1, 51))
    assert not torch.equal(layer.keys[:, :, -1], twin.keys[:, :, -1])


def test_grow_in_place_swaps_only_plain_dynamic_layers():
    config = gpt2.config_from_stock(stock_gpt2().config)
    cache = DynamicCache(config=config)
    cache.update(*kv(3, 0), 0)
    grow_in_place(cache)
    assert all(type(layer) is GrowableLayer for layer in cache.layers)
    assert cache.get_seq_length() == 3  # the state moved with the layer
    lazy = DynamicCache()  # layers created on first use
    grow_in_place(lazy)
    lazy.update(*kv(2, 1), 0)
    assert type(lazy.layers[0]) is GrowableLayer
    static = StaticCache(config=config, max_cache_len=8)
    layers = list(static.layers)
    grow_in_place(static)
    assert static.layers == layers
    pair = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    grow_in_place(pair)
    assert all(type(layer) is GrowableLayer for layer in pair.self_attention_cache.layers)
    assert all(type(layer) is DynamicLayer for layer in pair.cross_attention_cache.layers)  # written once


def test_decoder_generations_equal_stock_gpt2_while_outgrowing_buffers(small_room):
    stock = stock_gpt2("gelu_new_4_heads")
    ours = gpt2.from_stock(stock)
    ids = ids_tensor((4, 5), low=1)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding
    ids = ids.masked_fill(mask == 0, 0)
    common = dict(attention_mask=mask, max_new_tokens=18, min_new_tokens=18, pad_token_id=0, eos_token_id=None)
    for kwargs in (dict(do_sample=False), dict(num_beams=3, num_return_sequences=2)):
        expected = stock.generate(ids, **common, **kwargs)
        out = ours.generate(ids, **common, **kwargs, return_dict_in_generate=True)
        assert torch.equal(out.sequences, expected), kwargs
        assert all(type(layer) is GrowableLayer for layer in getattr(out, CACHE_NAME).layers)
    # assisted and prompt-lookup decoding crop the cache after rejected guesses; sampling with several sequences
    one = dict(max_new_tokens=15, min_new_tokens=15, pad_token_id=0, eos_token_id=None)
    assistant = gpt2.from_stock(stock_gpt2("relu_2_heads", seed=1))
    expected = stock.generate(ids[:1], do_sample=False, **one)
    for kwargs in (dict(assistant_model=assistant), dict(prompt_lookup_num_tokens=3)):
        assert torch.equal(ours.generate(ids[:1], do_sample=False, **one, **kwargs), expected), kwargs
    sampled = []
    for model in (stock, ours):
        torch.manual_seed(0)
        sampled.append(model.generate(ids, attention_mask=mask, do_sample=True, num_return_sequences=3, **one))
    assert torch.equal(*sampled)
    # a forward on a cache built by the caller, continued step by step, equals one forward over everything
    full = ours(ids, attention_mask=mask).logits
    cache = DynamicCache()
    ours(ids[:, :3], attention_mask=mask[:, :3], cache=cache, use_cache=True)
    for i in (3, 4):
        step = ours(ids[:, i:i + 1], attention_mask=mask[:, :i + 1], cache=cache, use_cache=True).logits
        torch.testing.assert_close(step[:, -1], full[:, i], atol=1e-5, rtol=0)
    assert all(type(layer) is GrowableLayer for layer in cache.layers)


def test_seq2seq_generations_equal_stock_bart_while_outgrowing_buffers(small_room):
    stock = stock_bart("gelu_h4", attn="sdpa")
    ours = bart.from_stock(stock)
    input_ids, mask, _ = bart_inputs(padding=True)
    for kwargs in (dict(do_sample=False), dict(num_beams=3)):
        expected = stock.generate(input_ids, attention_mask=mask, max_new_tokens=12, **kwargs)
        out = ours.generate(input_ids, attention_mask=mask, max_new_tokens=12, return_dict_in_generate=True, **kwargs)
        assert torch.equal(out.sequences, expected), kwargs
        assert all(type(layer) is GrowableLayer for layer in getattr(out, CACHE_NAME).self_attention_cache.layers)
