"""GPT-2 conversion: tiny random stock GPT-2 models (built offline) against their w2vformer conversions.

The same logits (eager and sdpa, with and without padding), hidden states, attention weights, greedy and
beam-search generations; the round trip stock -> ours -> stock is bit-identical; options GPT-2 cannot
express are refused by name.
"""

from __future__ import annotations

import pytest
import torch
from common import BATCH, SEQ, VOCAB, assert_close, ids_tensor, random_padding_mask
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

from w2vformer.conversion._common import load_checked
from w2vformer.conversion.gpt2 import (
    config_from_stock,
    config_to_stock,
    convert_state_dict,
    from_stock,
    to_stock,
)
from w2vformer.modeling.attention import CACHE_NAME
from w2vformer.modeling.configuration_decoder import DecoderConfig
from w2vformer.modeling.modeling_decoder import DecoderForCausalLM, DecoderModel

# different head counts, activations, inner sizes and epsilons
STOCK_CONFIGS = {
    "gelu_new_4_heads": dict(n_head=4, n_inner=37, activation_function="gelu_new"),
    "relu_2_heads": dict(n_head=2, n_inner=None, activation_function="relu", layer_norm_epsilon=1e-6),
    "gelu_8_heads_3_layers": dict(n_head=8, n_layer=3, n_inner=41, activation_function="gelu"),
}


def stock_gpt2(name="gelu_new_4_heads", head=True, seed=0) -> GPT2Model | GPT2LMHeadModel:
    kwargs = dict(vocab_size=VOCAB, n_positions=24, n_embd=32, n_layer=2, bos_token_id=VOCAB - 1,
                  eos_token_id=VOCAB - 1, pad_token_id=0)
    kwargs.update(STOCK_CONFIGS[name])
    torch.manual_seed(seed)
    model = (GPT2LMHeadModel if head else GPT2Model)(GPT2Config(**kwargs)).eval()
    with torch.no_grad():  # LayerNorms start at (1, 0): give them values so a swapped norm shows
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    return model


@pytest.mark.parametrize("name", STOCK_CONFIGS)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("side", [None, "left", "right"])
def test_same_logits_hidden_states_and_attentions(name, attn, side):
    stock = stock_gpt2(name)
    stock.set_attn_implementation(attn)
    ours = from_stock(stock)
    assert type(ours) is DecoderForCausalLM and ours.config._attn_implementation == attn and not ours.training
    ids = ids_tensor((BATCH, SEQ))
    mask = None if side is None else random_padding_mask(side=side)
    keep = torch.ones(BATCH, SEQ, dtype=torch.bool) if mask is None else mask.bool()
    with torch.no_grad():
        a = stock(ids, attention_mask=mask, output_hidden_states=True, output_attentions=attn == "eager")
        b = ours(ids, attention_mask=mask, output_hidden_states=True, output_attentions=attn == "eager")
    assert_close(a.logits[keep], b.logits[keep], msg="logits")
    assert len(a.hidden_states) == len(b.hidden_states)
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x[keep], y[keep], msg=f"hidden state {i}")
    if attn == "eager":
        assert len(a.attentions) == len(b.attentions) == stock.config.n_layer
        for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
            assert_close(x, y, msg=f"attention {i}")


def test_base_model_parity_and_cache():
    stock = stock_gpt2("relu_2_heads", head=False)
    ours = from_stock(stock)
    assert type(ours) is DecoderModel
    ids = ids_tensor((BATCH, SEQ))
    with torch.no_grad():
        a = stock(ids[:, :4], use_cache=True)
        b = ours(ids[:, :4], use_cache=True)
        a2 = stock(ids[:, 4:], **{CACHE_NAME: getattr(a, CACHE_NAME)})  # `cache` from transformers 5.24
        b2 = ours(ids[:, 4:], cache=getattr(b, CACHE_NAME))
    assert_close(a.last_hidden_state, b.last_hidden_state)
    assert_close(a2.last_hidden_state, b2.last_hidden_state)
    for layer_a, layer_b in zip(getattr(a2, CACHE_NAME).layers, getattr(b2, CACHE_NAME).layers):
        assert_close(layer_a.keys, layer_b.keys)
        assert_close(layer_a.values, layer_b.values)


@pytest.mark.parametrize("name", ["gelu_new_4_heads", "relu_2_heads"])
def test_same_greedy_and_beam_generations(name):
    stock = stock_gpt2(name)
    ours = from_stock(stock)
    ids = ids_tensor((4, 6), low=1)
    mask = torch.ones_like(ids)
    mask[1, :2] = mask[3, :4] = 0  # left padding
    ids = ids.masked_fill(mask == 0, 0)
    common = dict(attention_mask=mask, max_new_tokens=8, pad_token_id=0, eos_token_id=None)
    for kwargs in (dict(do_sample=False), dict(do_sample=False, num_beams=3, num_return_sequences=2)):
        expected = stock.generate(ids, **common, **kwargs)
        assert torch.equal(ours.generate(ids, **common, **kwargs), expected), kwargs


@pytest.mark.parametrize("head", [True, False])
def test_round_trip_is_bit_identical(head):
    stock = stock_gpt2("gelu_8_heads_3_layers", head=head)
    back = to_stock(from_stock(stock))
    assert type(back) is type(stock)
    original, returned = stock.state_dict(), back.state_dict()
    assert original.keys() == returned.keys()
    for key in original:
        assert torch.equal(original[key], returned[key]), key
    if head:
        assert back.lm_head.weight is back.transformer.wte.weight


def test_round_trip_config_fields():
    stock = stock_gpt2("relu_2_heads").config
    ours = config_from_stock(stock)
    assert (ours.norm_position, ours.position_embedding_type, ours.scale_embedding, ours.hidden_act) == (
        "pre", "learned", False, "relu")
    assert ours.intermediate_size == 4 * stock.n_embd  # n_inner=None means 4 * n_embd
    back = config_to_stock(ours)
    for field in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function",
                  "layer_norm_epsilon", "resid_pdrop", "attn_pdrop", "bos_token_id", "eos_token_id",
                  "pad_token_id", "tie_word_embeddings"):
        assert getattr(back, field) == getattr(stock, field), field


def test_ours_to_stock_to_ours_and_saved_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = DecoderConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=24, norm_position="pre",
                           position_embedding_type="learned", scale_embedding=False, hidden_act="gelu_new")
    ours = DecoderForCausalLM(config).eval()
    stock = to_stock(ours)
    ids = ids_tensor((BATCH, SEQ))
    with torch.no_grad():
        assert_close(stock(ids).logits, ours(ids).logits)
    again = from_stock(stock)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    stock.save_pretrained(tmp_path)  # a stock checkpoint folder converts after reloading
    reloaded = from_stock(GPT2LMHeadModel.from_pretrained(tmp_path).eval())
    with torch.no_grad():
        assert_close(reloaded(ids).logits, ours(ids).logits)


def test_convert_state_dict_is_pure_and_checks_keys():
    stock = stock_gpt2()
    state = stock.state_dict()
    snapshot = {k: v.clone() for k, v in state.items()}
    converted = convert_state_dict(state)
    assert all(torch.equal(state[k], snapshot[k]) for k in state) and state.keys() == snapshot.keys()
    # c_attn (C, 3C) is split into q/k/v (C, C) and transposed to nn.Linear's (out, in)
    c_attn = state["transformer.h.0.attn.c_attn.weight"]
    assert torch.equal(converted["model.layers.0.self_attn.k_proj.weight"], c_attn[:, 32:64].t())
    assert len(converted) == len(DecoderForCausalLM(config_from_stock(stock.config)).state_dict())
    # old checkpoints' causal-mask buffers are not weights: dropped
    legacy = {**state, "transformer.h.0.attn.bias": torch.ones(1, 1, 24, 24),
              "transformer.h.0.attn.masked_bias": torch.tensor(-1e4)}
    assert convert_state_dict(legacy).keys() == converted.keys()
    with pytest.raises(ValueError, match="transformer.h.0.attn.rotary.weight"):
        convert_state_dict({**state, "transformer.h.0.attn.rotary.weight": torch.zeros(2)})
    reverse = convert_state_dict(converted, reverse=True)
    del reverse["transformer.h.1.mlp.c_fc.bias"]
    with pytest.raises(ValueError, match="missing.*h.1.mlp.c_fc.bias"):
        load_checked(GPT2LMHeadModel(stock.config), reverse, "test")
    reverse = convert_state_dict(converted, reverse=True)
    reverse["transformer.wpe.weight"] = reverse["transformer.wpe.weight"][:10]
    with pytest.raises(ValueError, match="shape mismatch.*wpe"):
        load_checked(GPT2LMHeadModel(stock.config), reverse, "test")


@pytest.mark.parametrize(
    "option, value",
    [
        ("norm_position", "post"),
        ("position_embedding_type", "sinusoidal"),
        ("position_embedding_type", "rotary"),
        ("scale_embedding", True),
        ("embedding_layer_norm", True),
        ("attention_bias", False),
        ("position_offset", 2),
    ],
)
def test_config_to_stock_refuses_what_gpt2_cannot_express(option, value):
    gpt2_like = dict(norm_position="pre", position_embedding_type="learned", scale_embedding=False)
    config = DecoderConfig(hidden_size=32, num_attention_heads=4, **{**gpt2_like, option: value})
    with pytest.raises(ValueError, match=f"{option}={value!r}"):
        config_to_stock(config)
    with pytest.raises(ValueError, match=option):
        to_stock(DecoderModel(DecoderConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=4, intermediate_size=37,
                                            **{**gpt2_like, option: value})))


@pytest.mark.parametrize(
    "option, value",
    [
        ("scale_attn_by_inverse_layer_idx", True),
        ("reorder_and_upcast_attn", True),
        ("add_cross_attention", True),
        ("scale_attn_weights", False),
    ],
)
def test_config_from_stock_refuses_what_we_cannot_express(option, value):
    with pytest.raises(ValueError, match=option):
        config_from_stock(GPT2Config(n_embd=32, n_head=4, n_layer=1, **{option: value}))


def test_wrong_model_types_are_refused():
    with pytest.raises(ValueError, match="GPT2Model or GPT2LMHeadModel"):
        from_stock(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="DecoderModel or DecoderForCausalLM"):
        to_stock(stock_gpt2())
