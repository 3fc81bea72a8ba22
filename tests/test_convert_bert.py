"""BERT conversion: transformers' stock BERT models <-> our encoder (conversion/bert.py).

Parity against the reference implementation: tiny random stock BERT models (built offline, every weight
perturbed so that a swapped LayerNorm or bias shows) converted to ours must give the same logits, hidden
states, attention weights and pooler output (eager and sdpa, with and without padding), and
stock -> ours -> stock must give back a bit-identical state dict.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import BertConfig

import w2vformer  # noqa: F401  (registers the Auto classes)
from w2vformer.conversion._common import load_checked
from w2vformer.conversion.bert import (
    config_from_stock,
    config_to_stock,
    convert_state_dict,
    from_stock,
    to_stock,
)
from w2vformer.modeling.configuration_encoder import EncoderConfig
from w2vformer.modeling.modeling_encoder import EncoderForMaskedLM, EncoderModel

from common import BATCH, HIDDEN, INTERMEDIATE, SEQ, VOCAB, assert_close, ids_tensor, random_padding_mask

STOCK_CLASSES = ("BertModel", "BertForMaskedLM", "BertForSequenceClassification", "BertForTokenClassification")
CONFIGS = {  # different head counts and activations
    "gelu_4_heads": dict(num_attention_heads=4, hidden_act="gelu"),
    "relu_2_heads": dict(num_attention_heads=2, hidden_act="relu", type_vocab_size=3),
    "gelu_new_8_heads": dict(num_attention_heads=8, hidden_act="gelu_new", num_hidden_layers=3),
}


def tiny_stock(class_name="BertForMaskedLM", seed=0, **kwargs):
    torch.manual_seed(seed)
    defaults = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, intermediate_size=INTERMEDIATE,
                    max_position_embeddings=24, num_labels=3, num_attention_heads=4)
    model = getattr(transformers, class_name)(BertConfig(**{**defaults, **kwargs})).eval()
    with torch.no_grad():  # BERT starts LayerNorms at 1/0 and biases at 0: perturb every weight
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def outputs(model, ids, mask, types, impl, **kwargs):
    model.set_attn_implementation(impl)
    return model(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True,
                 output_attentions=impl == "eager", **kwargs)


def assert_same_outputs(a, b, atol=1e-5):
    key = "logits" if "logits" in a else "last_hidden_state"
    assert_close(a[key], b[key], atol=atol, msg=key)
    if "pooler_output" in a and a.pooler_output is not None:
        assert_close(a.pooler_output, b.pooler_output, atol=atol, msg="pooler_output")
    assert len(a.hidden_states) == len(b.hidden_states)
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x, y, atol=atol, msg=f"hidden_states[{i}]")
    assert len(a.attentions or ()) == len(b.attentions or ())
    for i, (x, y) in enumerate(zip(a.attentions or (), b.attentions or ())):
        assert_close(x, y, atol=atol, msg=f"attentions[{i}]")


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", STOCK_CLASSES)
def test_parity_with_stock_bert(class_name, config_name):
    stock = tiny_stock(class_name, **CONFIGS[config_name])
    ours = from_stock(stock)
    assert type(ours).__name__ == class_name.replace("Bert", "Encoder") and not ours.training
    ids = ids_tensor((BATCH, SEQ))
    types = ids_tensor((BATCH, SEQ), vocab_size=stock.config.type_vocab_size, seed=1)
    for mask in (None, random_padding_mask(side="right", seed=2)):
        for impl in ("eager", "sdpa"):
            expected = outputs(stock, ids, mask, types, impl)
            got = outputs(ours, ids, mask, types, impl)
            assert_same_outputs(expected, got)
            if impl == "eager":
                assert len(got.attentions) == stock.config.num_hidden_layers


@pytest.mark.parametrize("class_name", STOCK_CLASSES)
def test_round_trip_is_bit_identical(class_name):
    stock = tiny_stock(class_name, hidden_act="gelu_new")
    back = to_stock(from_stock(stock))
    assert type(back) is type(stock)
    before, after = stock.state_dict(), back.state_dict()
    assert sorted(before) == sorted(after)
    for key, tensor in before.items():
        assert torch.equal(tensor, after[key]), key
    assert back.config.to_diff_dict() == {**stock.config.to_diff_dict(), "architectures": [class_name]}


def test_labels_and_losses_match():
    for class_name, labels in [("BertForMaskedLM", ids_tensor((BATCH, SEQ), seed=3)),
                               ("BertForSequenceClassification", ids_tensor((BATCH,), vocab_size=3, seed=4)),
                               ("BertForTokenClassification", ids_tensor((BATCH, SEQ), vocab_size=3, seed=5))]:
        stock = tiny_stock(class_name)
        ours = from_stock(stock)
        ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
        expected = stock(ids, attention_mask=mask, labels=labels).loss
        assert_close(ours(ids, attention_mask=mask, labels=labels).loss, expected)
        assert ours.config.id2label == stock.config.id2label


def test_left_padding_and_explicit_positions():
    """Our default positions start at each row's first real token; BERT's do not, unless given explicitly."""
    stock = tiny_stock("BertModel")
    ours = from_stock(stock)
    mask = random_padding_mask(side="left", seed=6)
    ids = ids_tensor((BATCH, SEQ)).masked_fill(mask == 0, 0)
    shifted = (torch.arange(SEQ) - mask.argmax(-1, keepdim=True)).clamp(min=0)
    expected = stock(ids, attention_mask=mask, position_ids=shifted).last_hidden_state
    assert_close(ours(ids, attention_mask=mask).last_hidden_state * mask[..., None], expected * mask[..., None])
    arange = torch.arange(SEQ).expand(BATCH, SEQ)
    assert_close(ours(ids, attention_mask=mask, position_ids=arange).last_hidden_state,
                 stock(ids, attention_mask=mask).last_hidden_state)


def test_converted_model_saves_and_reloads_with_parity(tmp_path):
    stock = tiny_stock("BertForMaskedLM")
    from_stock(stock).save_pretrained(tmp_path)
    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, EncoderForMaskedLM)
    assert reloaded.lm_head.out_proj.weight is reloaded.get_input_embeddings().weight
    ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
    assert_close(reloaded(ids, attention_mask=mask).logits, stock(ids, attention_mask=mask).logits)


def test_untied_and_poolerless_models_convert():
    stock = tiny_stock("BertForMaskedLM", tie_word_embeddings=False)
    ours = from_stock(stock)
    assert ours.lm_head.out_proj.weight is not ours.get_input_embeddings().weight
    ids = ids_tensor((BATCH, SEQ))
    assert_close(ours(ids).logits, stock(ids).logits)
    torch.manual_seed(0)
    bare = transformers.BertModel(stock.config, add_pooling_layer=False).eval()
    ours = from_stock(bare)
    assert ours.pooler is None and ours(ids).pooler_output is None
    assert_close(ours(ids).last_hidden_state, bare(ids).last_hidden_state)
    assert to_stock(ours).pooler is None


def test_our_encoder_without_token_types_exports_exactly():
    """type_vocab_size=0 becomes one all-zero BERT token-type row: the same outputs."""
    config = config_from_stock(tiny_stock("BertModel").config)
    config.type_vocab_size = 0
    torch.manual_seed(1)
    ours = EncoderModel(EncoderConfig(**config.to_dict())).eval()
    stock = to_stock(ours)
    assert stock.config.type_vocab_size == 1 and stock.embeddings.token_type_embeddings.weight.abs().max() == 0
    ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
    assert_close(stock(ids, attention_mask=mask).pooler_output, ours(ids, attention_mask=mask).pooler_output)


@pytest.mark.parametrize(
    "option, value",
    [("norm_position", "pre"), ("position_embedding_type", "rotary"), ("position_embedding_type", "sinusoidal"),
     ("scale_embedding", True), ("embedding_layer_norm", False), ("attention_bias", False), ("position_offset", 2)],
)
def test_config_to_stock_names_what_bert_cannot_express(option, value):
    config = config_from_stock(tiny_stock("BertModel").config)
    setattr(config, option, value)
    with pytest.raises(ValueError, match=f"{option}={value!r}"):
        config_to_stock(config)


def test_head_requirements_and_unsupported_classes():
    config = config_from_stock(tiny_stock("BertModel").config)
    config.mlm_head_transform = False
    config_to_stock(config)  # fine for the bare model
    with pytest.raises(ValueError, match="mlm_head_transform=False"):
        to_stock(EncoderForMaskedLM(config))
    with pytest.raises(ValueError, match="BertForPreTraining"):
        from_stock(tiny_stock("BertForPreTraining"))
    with pytest.raises(ValueError, match="cls.seq_relationship.weight"):
        convert_state_dict(tiny_stock("BertForPreTraining").state_dict())
    with pytest.raises(ValueError, match="is_decoder"):
        config_from_stock(BertConfig(is_decoder=True))
    # default (paper) encoder: every option BERT lacks is named at once
    with pytest.raises(ValueError, match="norm_position|position_embedding_type='sinusoidal'.*scale_embedding=True"):
        config_to_stock(EncoderConfig())


def test_key_count_and_shape_checks_before_copying():
    stock = tiny_stock("BertForMaskedLM")
    converted = convert_state_dict(stock.state_dict())
    ours = EncoderForMaskedLM(config_from_stock(stock.config))
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    bad = dict(converted)
    bad["lm_head.out_proj.bias"] = torch.zeros(VOCAB + 1)
    with pytest.raises(ValueError, match=r"shape mismatch.*lm_head.out_proj.bias: \(100,\) vs \(99,\)"):
        load_checked(ours, bad, "test")
    bad = dict(converted)
    del bad["model.layers.1.mlp.fc2.weight"]
    with pytest.raises(ValueError, match="missing.*model.layers.1.mlp.fc2.weight"):
        load_checked(ours, bad, "test")
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in before.items())  # nothing copied
