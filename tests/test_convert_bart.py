"""Stock BART <-> our encoder-decoder: same logits, hidden states, attention weights and generations as
transformers' own BartForConditionalGeneration (tiny random models built offline), and bit-identical round trips."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, BartModel

from common import BATCH, SEQ, assert_close, ids_tensor, random_padding_mask
from w2vformer.conversion.bart import config_from_stock, config_to_stock, convert_state_dict, from_stock, to_stock
from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig
from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration, Seq2SeqModel

BART_PAD, BART_BOS, BART_EOS = 1, 0, 2
VOCAB = 67
TGT = 6

# several shapes and options of stock BART: head counts, activations, embedding scale, untied head
CONFIGS = {
    "gelu_h4": dict(encoder_attention_heads=4, decoder_attention_heads=4),
    "relu_h2_scaled": dict(encoder_attention_heads=2, decoder_attention_heads=2, activation_function="relu", scale_embedding=True),
    "silu_h8_untied_deep": dict(encoder_attention_heads=8, decoder_attention_heads=8, activation_function="silu",
                                encoder_layers=1, decoder_layers=3, tie_word_embeddings=False),
}


def make_stock(name: str, cls=BartForConditionalGeneration, attn="eager", seed=0):
    kwargs = dict(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=37, decoder_ffn_dim=37,
        max_position_embeddings=20, pad_token_id=BART_PAD, bos_token_id=BART_BOS, eos_token_id=BART_EOS,
        decoder_start_token_id=BART_EOS, forced_eos_token_id=BART_EOS, dropout=0.1, attention_dropout=0.1,
    )
    kwargs.update(CONFIGS[name])
    torch.manual_seed(seed)
    model = cls(BartConfig(**kwargs, attn_implementation=attn)).eval()
    with torch.no_grad():  # weights far from the 0.02 init so every difference shows, and generations vary
        for n, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.1))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0.0, 0.5)
    return model


def inputs(padding: bool, seed=0):
    input_ids = ids_tensor((BATCH, SEQ), vocab_size=VOCAB, low=3, seed=seed)
    mask = random_padding_mask(BATCH, SEQ, side="right", seed=seed) if padding else torch.ones(BATCH, SEQ, dtype=torch.long)
    input_ids = input_ids.masked_fill(mask == 0, BART_PAD)
    decoder_input_ids = ids_tensor((BATCH, TGT), vocab_size=VOCAB, low=3, seed=seed + 1)
    return input_ids, mask, decoder_input_ids


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("name", CONFIGS)
def test_same_logits_as_stock_bart(name, padding, attn):
    stock = make_stock(name, attn=attn)
    ours = from_stock(stock)
    assert type(ours) is Seq2SeqForConditionalGeneration and ours.config._attn_implementation == attn
    input_ids, mask, decoder_input_ids = inputs(padding)
    decoder_mask = torch.ones_like(decoder_input_ids)
    decoder_mask[2, -2:] = 0
    for kwargs in (dict(decoder_input_ids=decoder_input_ids), dict(decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_mask)):
        expected = stock(input_ids, attention_mask=mask, **kwargs)
        got = ours(input_ids, attention_mask=mask, **kwargs)
        assert_close(got.logits, expected.logits, atol=1e-5, msg=f"{name} padding={padding} {attn}")
        assert_close(got.encoder_last_hidden_state, expected.encoder_last_hidden_state, atol=1e-5)
    # training mode with labels: same loss when dropout draws the same masks
    stock.train(), ours.train()
    labels = decoder_input_ids.masked_fill(decoder_mask == 0, -100)
    torch.manual_seed(3)
    with _no_layerdrop_draws():
        expected = stock(input_ids, attention_mask=mask, labels=labels).loss
    torch.manual_seed(3)
    got = ours(input_ids, attention_mask=mask, labels=labels).loss
    assert_close(got, expected, atol=1e-5, msg="loss with dropout")


@contextlib.contextmanager
def _no_layerdrop_draws():
    """Stock BART before transformers 5.2x draws ``torch.rand([])`` for LayerDrop before every layer in training,
    even at layerdrop 0, which shifts every later dropout mask; ours (and BART in 5.23) draws nothing then. Within
    this block such a scalar draw takes no random numbers and returns 1.0 (never drop), so both models see the
    same masks on any 5.x."""
    real = torch.rand

    def rand(*size, **kwargs):
        if len(size) == 1 and isinstance(size[0], (list, tuple)) and len(size[0]) == 0:  # torch.rand([]), rand(())
            return torch.ones((), **{k: v for k, v in kwargs.items() if k in ("dtype", "device")})
        return real(*size, **kwargs)

    torch.rand = rand
    try:
        yield
    finally:
        torch.rand = real


@pytest.mark.parametrize("name", CONFIGS)
def test_same_hidden_states_and_attention_weights(name):
    stock = make_stock(name)
    ours = from_stock(stock)
    input_ids, mask, decoder_input_ids = inputs(padding=True)
    kwargs = dict(attention_mask=mask, decoder_input_ids=decoder_input_ids, output_attentions=True, output_hidden_states=True)
    expected, got = stock(input_ids, **kwargs), ours(input_ids, **kwargs)
    for key in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "decoder_attentions", "cross_attentions"):
        assert len(got[key]) == len(expected[key]) > 0, key
        for i, (a, b) in enumerate(zip(got[key], expected[key])):
            assert_close(a, b, atol=1e-5, msg=f"{key}[{i}]")


@pytest.mark.parametrize("name", CONFIGS)
def test_same_generations_greedy_and_beam(name):
    stock = make_stock(name, attn="sdpa")
    ours = from_stock(stock)
    input_ids, mask, _ = inputs(padding=True)
    for kwargs in (dict(do_sample=False), dict(num_beams=3), dict(num_beams=2, num_return_sequences=2, length_penalty=0.5)):
        expected = stock.generate(input_ids, attention_mask=mask, max_new_tokens=10, **kwargs)
        got = ours.generate(input_ids, attention_mask=mask, max_new_tokens=10, **kwargs)
        assert torch.equal(got, expected), kwargs
        assert len(set(map(tuple, got.tolist()))) > 2  # the random models generate varied sequences


@pytest.mark.parametrize("cls", [BartForConditionalGeneration, BartModel])
@pytest.mark.parametrize("name", CONFIGS)
def test_round_trip_is_bit_identical(name, cls):
    stock = make_stock(name, cls=cls)
    ours = from_stock(stock)
    assert type(ours) is (Seq2SeqForConditionalGeneration if cls is BartForConditionalGeneration else Seq2SeqModel)
    back = to_stock(ours)
    assert type(back) is cls
    a, b = stock.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for field in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                  "decoder_ffn_dim", "activation_function", "scale_embedding", "max_position_embeddings",
                  "tie_word_embeddings", "pad_token_id", "eos_token_id", "decoder_start_token_id"):
        assert getattr(back.config, field) == getattr(stock.config, field), field
    # the weights are copies, not shared with the source
    first = next(iter(a))
    assert a[first].data_ptr() != ours.state_dict()[first].data_ptr()
    if cls is BartForConditionalGeneration:
        assert ours.generation_config.forced_eos_token_id == BART_EOS


def test_convert_state_dict_renames_only_the_output_projections():
    stock = make_stock("gelu_h4")
    sd = stock.state_dict()
    converted = convert_state_dict({**sd, "model.encoder.version": torch.tensor([2.0])})
    renamed = {k for k in sd if k not in converted}
    assert renamed and all(".out_proj." in k for k in renamed)
    assert len(converted) == len(sd)  # the fairseq `version` key is dropped
    assert convert_state_dict(converted, to_stock=True).keys() == sd.keys()
    assert all(converted[k.replace(".out_proj.", ".o_proj.")] is sd[k] for k in sd)  # pure: no copies


def test_config_mapping_and_errors():
    ours = config_from_stock(make_stock("relu_h2_scaled").config)
    assert (ours.position_embedding_type, ours.position_offset, ours.embedding_layer_norm, ours.norm_position) == ("learned", 2, True, "post")
    assert (ours.hidden_act, ours.scale_embedding, ours.num_attention_heads, ours.layer_norm_eps) == ("relu", True, 2, 1e-5)
    with pytest.raises(ValueError, match="decoder_attention_heads=2"):
        config_from_stock(BartConfig(encoder_attention_heads=4, decoder_attention_heads=2))
    with pytest.raises(ValueError, match="decoder_ffn_dim=64"):
        config_from_stock(BartConfig(encoder_ffn_dim=32, decoder_ffn_dim=64))
    # our default (the paper's Transformer) is not a BART: every option BART cannot express is named
    with pytest.raises(ValueError) as err:
        config_to_stock(Seq2SeqConfig(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, norm_position="pre"))
    for option in ("position_embedding_type='sinusoidal'", "position_offset=0", "norm_position='pre'", "embedding_layer_norm=False"):
        assert option in str(err.value)
    with pytest.raises(ValueError, match="BartModel or BartForConditionalGeneration"):
        from_stock(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Seq2SeqModel or Seq2SeqForConditionalGeneration"):
        to_stock(make_stock("gelu_h4"))


def test_mismatched_state_dict_is_rejected_before_copying():
    from w2vformer.conversion._common import load_checked

    ours = from_stock(make_stock("gelu_h4"))
    sd = {k: v.clone() for k, v in ours.state_dict().items()}
    before = ours.model.shared.weight.clone()
    sd["model.shared.weight"] = torch.zeros(VOCAB + 1, 32)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_checked(ours, sd, "test")
    del sd["model.shared.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_checked(ours, sd, "test")
    assert torch.equal(ours.model.shared.weight, before)
