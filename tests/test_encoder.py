"""Encoder-only family: EncoderConfig, EncoderModel and the masked-LM, sequence- and token-classification heads.

What a transformers user does with an encoder: shapes and outputs, loss reaching every parameter, save/load and
Auto classes, eager == sdpa, padding invariance (either side), tied + resized embeddings, the paper's sinusoids,
Trainer (with gradient accumulation), activation checkpointing, bf16 autocast, the four pipelines, overfitting,
and clear errors for bad configs and inputs. BERT parity lives in test_convert_bert.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
    pipeline,
)

import w2vformer  # noqa: F401  (registers the Auto classes)
from w2vformer.modeling.configuration_encoder import EncoderConfig
from w2vformer.modeling.modeling_encoder import (
    EncoderForMaskedLM,
    EncoderForSequenceClassification,
    EncoderForTokenClassification,
    EncoderModel,
)

from common import (
    BATCH,
    HIDDEN,
    INTERMEDIATE,
    SEQ,
    VOCAB,
    assert_close,
    check_loss_reaches_every_parameter,
    enable_checkpointing,
    ids_tensor,
    is_checkpointing,
    random_padding_mask,
    save_and_reload,
)

# the paper's encoder (default), BERT's options, pre-norm + rotary, and the remaining switches
VARIANTS = {
    "paper": {},
    "bert": dict(position_embedding_type="learned", type_vocab_size=2, embedding_layer_norm=True,
                 scale_embedding=False, hidden_act="gelu", use_pooler=True, mlm_head_transform=True),
    "pre_rotary": dict(norm_position="pre", position_embedding_type="rotary", hidden_act="silu", attention_bias=False),
    "pre_learned_offset": dict(norm_position="pre", position_embedding_type="learned", position_offset=2,
                               type_vocab_size=3, use_pooler=True),
}
HEADS = (EncoderModel, EncoderForMaskedLM, EncoderForSequenceClassification, EncoderForTokenClassification)
AUTO = {EncoderModel: AutoModel, EncoderForMaskedLM: AutoModelForMaskedLM,
        EncoderForSequenceClassification: AutoModelForSequenceClassification,
        EncoderForTokenClassification: AutoModelForTokenClassification}
NUM_LABELS = 3


def tiny_config(variant="paper", **kwargs) -> EncoderConfig:
    defaults = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=INTERMEDIATE, max_position_embeddings=20, dropout=0.0, num_labels=NUM_LABELS)
    return EncoderConfig(**{**defaults, **VARIANTS[variant], **kwargs})


def tiny(cls=EncoderForMaskedLM, variant="paper", seed=0, **kwargs):
    torch.manual_seed(seed)
    model = cls(tiny_config(variant, **kwargs)).eval()
    with torch.no_grad():  # LayerNorms and biases start at 1/0: perturb them so a swapped one shows
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def main_output(out):
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


# ---------------------------------------------------------------- configuration and bad inputs


@pytest.mark.parametrize(
    "kwargs, quoted",
    [
        (dict(hidden_size=30, num_attention_heads=4), "30"),
        (dict(position_embedding_type="absolute"), "'absolute'"),
        (dict(norm_position="sandwich"), "'sandwich'"),
        (dict(hidden_act="swish_typo"), "'swish_typo'"),
        (dict(pad_token_id=99, vocab_size=99), "99"),
        (dict(hidden_size="32"), "'32'"),
        (dict(num_hidden_layers=0), "num_hidden_layers.*0"),
    ],
)
def test_config_validation_quotes_the_value(kwargs, quoted):
    with pytest.raises(ValueError, match=quoted):
        tiny_config(**kwargs)


def test_config_defaults_are_the_paper():
    c = EncoderConfig()
    assert (c.norm_position, c.position_embedding_type, c.scale_embedding) == ("post", "sinusoidal", True)
    assert c.hidden_act == "relu"
    assert (c.type_vocab_size, c.use_pooler, c.tie_word_embeddings, c.embedding_layer_norm) == (0, False, True, False)


def test_bad_inputs_raise_clear_errors():
    model = tiny(EncoderModel, "bert")
    with pytest.raises(ValueError, match=f"token id {VOCAB + 5}.*vocabulary of size {VOCAB}"):
        model(torch.tensor([[1, 2, VOCAB + 5]]))
    with pytest.raises(ValueError, match="length 21.*max_position_embeddings=20"):
        model(ids_tensor((1, 21)))
    with pytest.raises(ValueError, match="token_type_ids contains 2.*type_vocab_size is 2"):
        model(ids_tensor((1, 5)), token_type_ids=torch.full((1, 5), 2))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    # sinusoidal and rotary positions extrapolate beyond max_position_embeddings
    for variant in ("paper", "pre_rotary"):
        out = tiny(EncoderModel, variant)(ids_tensor((2, 33)))
        assert out.last_hidden_state.shape == (2, 33, HIDDEN) and torch.isfinite(out.last_hidden_state).all()


# ---------------------------------------------------------------- forward: shapes and outputs


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_hidden_states_attentions_and_tuples(variant):
    ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
    expected = {EncoderModel: (BATCH, SEQ, HIDDEN), EncoderForMaskedLM: (BATCH, SEQ, VOCAB),
                EncoderForSequenceClassification: (BATCH, NUM_LABELS),
                EncoderForTokenClassification: (BATCH, SEQ, NUM_LABELS)}
    for cls in HEADS:
        model = tiny(cls, variant)
        model.set_attn_implementation("eager")
        out = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        assert main_output(out).shape == expected[cls]
        assert len(out.hidden_states) == 3 and all(h.shape == (BATCH, SEQ, HIDDEN) for h in out.hidden_states)
        assert len(out.attentions) == 2 and all(a.shape == (BATCH, 4, SEQ, SEQ) for a in out.attentions)
        # A' rows are distributions over the real tokens only
        assert_close(out.attentions[0].sum(-1), torch.ones(BATCH, 4, SEQ))
        assert (out.attentions[1] * (1 - mask[:, None, None, :])).abs().max() == 0
        tup = model(ids, attention_mask=mask, return_dict=False)
        assert isinstance(tup, tuple) and torch.equal(tup[0], main_output(out))
    base = tiny(EncoderModel, variant)(ids)
    assert (base.pooler_output is not None) == tiny_config(variant).use_pooler
    if base.pooler_output is not None:
        assert base.pooler_output.shape == (BATCH, HIDDEN) and base.pooler_output.abs().max() <= 1  # tanh


def test_inputs_embeds_equal_input_ids():
    for variant in VARIANTS:
        model = tiny(EncoderForMaskedLM, variant)
        ids = ids_tensor((BATCH, SEQ))
        assert_close(model(inputs_embeds=model.get_input_embeddings()(ids)).logits, model(ids).logits)


def test_sinusoidal_positions_are_the_papers_formula():
    model = tiny(EncoderModel, "paper", hidden_size=30, num_attention_heads=3)
    ids = ids_tensor((2, 11))
    h0 = model(ids, output_hidden_states=True).hidden_states[0]  # embeddings * sqrt(C) + PE (dropout 0, no LN)
    pe = h0 - model.get_input_embeddings()(ids) * math.sqrt(30)
    expected = torch.tensor(
        [[math.sin(p / 10000 ** (i / 30)) if i % 2 == 0 else math.cos(p / 10000 ** ((i - 1) / 30)) for i in range(30)]
         for p in range(11)]
    )
    assert_close(pe[0], expected, atol=1e-5)
    assert_close(pe[1], expected, atol=1e-5)


# ---------------------------------------------------------------- training signal


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loss_reaches_every_parameter(variant):
    ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
    types = ids_tensor((BATCH, SEQ), vocab_size=max(tiny_config(variant).type_vocab_size, 1))
    labels = {EncoderForMaskedLM: ids_tensor((BATCH, SEQ), seed=1),
              EncoderForSequenceClassification: ids_tensor((BATCH,), vocab_size=NUM_LABELS, seed=2),
              EncoderForTokenClassification: ids_tensor((BATCH, SEQ), vocab_size=NUM_LABELS, seed=3)}
    for cls, y in labels.items():
        model = tiny(cls, variant).train()
        loss = model(ids, attention_mask=mask, token_type_ids=types, labels=y).loss
        check_loss_reaches_every_parameter(model, loss)


def test_sequence_classification_problem_types():
    ids = ids_tensor((BATCH, SEQ))
    model = tiny(EncoderForSequenceClassification, "bert", num_labels=1)
    y = torch.randn(BATCH)
    out = model(ids, labels=y)
    assert model.config.problem_type == "regression"
    assert_close(out.loss, ((out.logits.squeeze(-1) - y) ** 2).mean())
    model = tiny(EncoderForSequenceClassification, "bert")
    y = ids_tensor((BATCH,), vocab_size=NUM_LABELS)
    out = model(ids, labels=y)
    assert model.config.problem_type == "single_label_classification"
    assert_close(out.loss, -out.logits.log_softmax(-1).gather(1, y[:, None]).mean())
    model = tiny(EncoderForSequenceClassification, "bert")
    y = ids_tensor((BATCH, NUM_LABELS), vocab_size=2).float()
    out = model(ids, labels=y)
    assert model.config.problem_type == "multi_label_classification"
    p = out.logits.sigmoid()
    assert_close(out.loss, -(y * p.log() + (1 - y) * (1 - p).log()).mean())


def test_activation_checkpointing_gives_the_same_gradients():
    ids, labels = ids_tensor((BATCH, SEQ)), ids_tensor((BATCH, SEQ), seed=1)
    grads = []
    for checkpointing in (False, True):
        model = tiny(EncoderForMaskedLM, "bert").train()
        if checkpointing:
            enable_checkpointing(model)
            assert is_checkpointing(model)
        model(ids, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        assert_close(grads[1][name], g, msg=name)


def test_bf16_autocast_on_cpu():
    model = tiny(EncoderForMaskedLM, "bert").train()
    ids, mask, labels = ids_tensor((BATCH, SEQ)), random_padding_mask(), ids_tensor((BATCH, SEQ), seed=1)
    reference = model(ids, attention_mask=mask, labels=labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.dtype == torch.bfloat16
    assert abs(out.loss.item() - reference.loss.item()) < 0.05
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---------------------------------------------------------------- attention back-ends and padding


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_eager_equals_sdpa_with_and_without_padding(variant):
    ids = ids_tensor((BATCH, SEQ))
    model = tiny(EncoderForMaskedLM, variant)
    for mask in (None, random_padding_mask(side="right"), random_padding_mask(side="left", seed=1)):
        model.set_attn_implementation("eager")
        eager = model(ids, attention_mask=mask, output_hidden_states=True)
        model.set_attn_implementation("sdpa")
        sdpa = model(ids, attention_mask=mask, output_hidden_states=True)
        keep = torch.ones(BATCH, SEQ) if mask is None else mask.float()
        assert_close(eager.logits * keep[..., None], sdpa.logits * keep[..., None])
        for a, b in zip(eager.hidden_states, sdpa.hidden_states):
            assert_close(a * keep[..., None], b * keep[..., None])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_does_not_change_real_tokens(variant, side):
    model = tiny(EncoderForTokenClassification, variant)
    mask = random_padding_mask(side=side, seed=3)
    ids = ids_tensor((BATCH, SEQ)).masked_fill(mask == 0, 0)
    types = ids_tensor((BATCH, SEQ), vocab_size=max(model.config.type_vocab_size, 1), seed=4)
    padded = model(ids, attention_mask=mask, token_type_ids=types).logits
    for row in range(BATCH):
        real = mask[row].bool()
        alone = model(ids[row, real][None], token_type_ids=types[row, real][None]).logits[0]
        assert_close(padded[row, real], alone, msg=f"row {row}")


# ---------------------------------------------------------------- save / load, tied and resized embeddings


@pytest.mark.parametrize("variant", ["paper", "bert"])
def test_save_and_reload_with_auto_classes(variant, tmp_path):
    ids, mask = ids_tensor((BATCH, SEQ)), random_padding_mask()
    for cls in HEADS:
        model = tiny(cls, variant)
        reloaded = save_and_reload(model, tmp_path / cls.__name__, AUTO[cls])
        assert type(reloaded) is cls
        assert (tmp_path / cls.__name__ / "model.safetensors").exists()
        assert_close(main_output(reloaded(ids, attention_mask=mask)), main_output(model(ids, attention_mask=mask)))


def test_tied_embeddings_stay_one_tensor_after_resize_and_reload(tmp_path):
    model = tiny(EncoderForMaskedLM, "bert")
    assert model.lm_head.out_proj.weight is model.get_input_embeddings().weight
    model.resize_token_embeddings(VOCAB + 6, pad_to_multiple_of=8)  # 105 -> 112
    new_vocab = 112
    assert model.config.vocab_size == new_vocab and model.lm_head.out_proj.bias.shape == (new_vocab,)
    assert model.lm_head.out_proj.weight is model.get_input_embeddings().weight
    ids = ids_tensor((BATCH, SEQ), vocab_size=new_vocab)
    assert model(ids).logits.shape == (BATCH, SEQ, new_vocab)
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert "lm_head.out_proj.weight" not in f.keys()  # a tied copy is not written
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert reloaded.lm_head.out_proj.weight is reloaded.get_input_embeddings().weight
    assert reloaded.config.vocab_size == new_vocab
    assert_close(reloaded(ids).logits, model(ids).logits)
    untied = tiny(EncoderForMaskedLM, "bert", tie_word_embeddings=False)
    assert untied.lm_head.out_proj.weight is not untied.get_input_embeddings().weight


# ---------------------------------------------------------------- Trainer, gradient accumulation, overfitting

WORDS = "the a cat dog bird sat ran flew on under over mat log tree red big small".split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """WordLevel tokenizer with the encoder preset's special tokens ([PAD]=0 ... [MASK]=4)."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=16)


SENTENCES = ["the cat sat on the mat", "a dog ran under a tree", "the bird flew over the log",
             "a big red cat sat", "the small dog ran", "a bird flew over a big tree"]


def trainer_args(tmp_path, **kwargs) -> TrainingArguments:
    defaults = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-3,
                    report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True,
                    dataloader_num_workers=0, seed=0)
    return TrainingArguments(**{**defaults, **kwargs})


def encoder_for(tokenizer, cls, **kwargs):
    return tiny(cls, "bert", vocab_size=len(tokenizer), hidden_size=32, **kwargs)


def test_trainer_mlm_with_collator_bf16_and_checkpointing(tmp_path):
    tokenizer = tiny_tokenizer()
    model = encoder_for(tokenizer, EncoderForMaskedLM).train()
    dataset = [tokenizer(s) for s in SENTENCES]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.3)
    # the option's name in transformers 5.2x; 5.17 (the GPU machines') calls it gradient_checkpointing
    name = "activation_checkpointing" if hasattr(TrainingArguments, "activation_checkpointing") else "gradient_checkpointing"
    args = trainer_args(tmp_path, bf16=True, gradient_accumulation_steps=2, **{name: True})
    before = model.model.embeddings.embed_positions.weight.detach().clone()
    result = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator).train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)
    assert not torch.equal(before, model.model.embeddings.embed_positions.weight)


def labelled_dataset(cls, tokenizer):
    """Four examples with fixed labels; the two micro-batches have different numbers of scored labels."""
    rows = []
    for i, s in enumerate(SENTENCES[:4]):
        enc = tokenizer(s, padding="max_length", max_length=10)
        n = sum(enc["attention_mask"])
        if cls is EncoderForSequenceClassification:
            labels = i % NUM_LABELS
        elif cls is EncoderForMaskedLM:
            labels = [enc["input_ids"][j] if 1 <= j <= 1 + i else -100 for j in range(10)]  # 1..4 scored tokens
        else:
            labels = [(j + i) % NUM_LABELS if j < n - i else -100 for j in range(10)]
        rows.append({**enc, "labels": labels})
    return rows


@pytest.mark.parametrize("cls", [EncoderForMaskedLM, EncoderForSequenceClassification, EncoderForTokenClassification])
def test_trainer_gradient_accumulation_loss_is_the_full_batch_loss(cls, tmp_path):
    tokenizer = tiny_tokenizer()
    model = encoder_for(tokenizer, cls)
    rows = labelled_dataset(cls, tokenizer)
    batch = {k: torch.tensor([r[k] for r in rows]) for k in rows[0]}
    expected = model(**batch).loss.item()  # one batch of 4 with the initial weights
    args = trainer_args(tmp_path, max_steps=1, gradient_accumulation_steps=2)  # two micro-batches of 2
    result = Trainer(model=model.train(), args=args, train_dataset=rows).train()
    assert abs(result.training_loss - expected) < 1e-5, (result.training_loss, expected)


def test_two_step_trainer_runs_for_classification_heads(tmp_path):
    tokenizer = tiny_tokenizer()
    for cls in (EncoderForSequenceClassification, EncoderForTokenClassification):
        model = encoder_for(tokenizer, cls).train()
        result = Trainer(model=model, args=trainer_args(tmp_path / cls.__name__),
                         train_dataset=labelled_dataset(cls, tokenizer)).train()
        assert result.global_step == 2 and math.isfinite(result.training_loss)


def overfit_mlm(tokenizer, steps=300):
    """Train a tiny BERT-like encoder until it has memorised SENTENCES with every single token masked."""
    torch.manual_seed(0)
    model = encoder_for(tokenizer, EncoderForMaskedLM, num_hidden_layers=1).train()
    inputs, labels = [], []
    for s in SENTENCES:
        ids = tokenizer(s, padding="max_length", max_length=10)["input_ids"]
        for j, t in enumerate(ids):
            if t > 4:  # a word, not a special token
                inputs.append(ids[:j] + [tokenizer.mask_token_id] + ids[j + 1:])
                labels.append([-100] * j + [t] + [-100] * (len(ids) - j - 1))
    inputs, labels = torch.tensor(inputs), torch.tensor(labels)
    mask = (inputs != tokenizer.pad_token_id).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model(inputs, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), loss.item()


def test_overfits_a_tiny_mlm_dataset_and_fill_mask_recalls_it():
    tokenizer = tiny_tokenizer()
    model, loss = overfit_mlm(tokenizer)
    assert loss < 0.05, loss
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)
    top = fill("the small [MASK] ran")  # only "dog" completes a training sentence
    assert top[0]["token_str"] == "dog" and top[0]["score"] > 0.5
    assert top[0]["sequence"] == "the small dog ran"


# ---------------------------------------------------------------- pipelines


def test_text_and_token_classification_and_feature_extraction_pipelines():
    tokenizer = tiny_tokenizer()
    labels = {0: "NEG", 1: "NEU", 2: "POS"}
    text = "the big cat sat on a mat"

    model = encoder_for(tokenizer, EncoderForSequenceClassification, id2label=labels,
                        label2id={v: k for k, v in labels.items()})
    scores = pipeline("text-classification", model=model, tokenizer=tokenizer)(text, top_k=NUM_LABELS)
    assert {s["label"] for s in scores} == set(labels.values())
    assert abs(sum(s["score"] for s in scores) - 1) < 1e-5
    logits = model(**tokenizer(text, return_tensors="pt")).logits[0]
    assert max(scores, key=lambda s: s["score"])["label"] == labels[int(logits.argmax())]

    tags = {0: "DET", 1: "NOUN", 2: "VERB"}
    model = encoder_for(tokenizer, EncoderForTokenClassification, id2label=tags,
                        label2id={v: k for k, v in tags.items()})
    entities = pipeline("token-classification", model=model, tokenizer=tokenizer)(text)
    assert [e["word"] for e in entities] == text.split()  # one tag per word, none for [CLS]/[SEP]
    assert all(text[e["start"]:e["end"]] == e["word"] and e["entity"] in tags.values() for e in entities)

    model = encoder_for(tokenizer, EncoderModel)
    features = pipeline("feature-extraction", model=model, tokenizer=tokenizer)(text)
    expected = model(**tokenizer(text, return_tensors="pt")).last_hidden_state
    assert_close(torch.tensor(features), expected)
    assert torch.tensor(features).shape == (1, len(text.split()) + 2, 32)
