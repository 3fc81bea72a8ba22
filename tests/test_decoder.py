"""Decoder-only family: DecoderConfig, DecoderModel, DecoderForCausalLM.

Everything a transformers user does with a causal LM: forward shapes, loss, save/load and Auto classes, eager ==
sdpa, causality, KV cache, left padding, tied + resized embeddings, generate (greedy, sampling, beam, static
cache), Trainer with gradient accumulation, activation checkpointing, bf16 autocast, pipelines, torch.compile.
"""

from __future__ import annotations

import math

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
    pipeline,
)

import w2vformer  # noqa: F401  (registers the Auto classes)
from w2vformer.modeling.attention import CACHE_NAME
from w2vformer.modeling.configuration_decoder import DecoderConfig
from w2vformer.modeling.modeling_decoder import DecoderForCausalLM, DecoderModel

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
    random_padding_mask,
    save_and_reload,
)

# the paper's decoder (default), GPT-2's options, rotary, and the remaining switches
VARIANTS = {
    "paper": {},
    "gpt2": dict(norm_position="pre", position_embedding_type="learned", scale_embedding=False, hidden_act="gelu_new"),
    "rotary": dict(norm_position="pre", position_embedding_type="rotary", hidden_act="silu", attention_bias=False),
    "bart_like": dict(position_embedding_type="learned", position_offset=2, embedding_layer_norm=True,
                      hidden_act="gelu"),
}


def tiny_config(**kwargs) -> DecoderConfig:
    defaults = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=INTERMEDIATE, max_position_embeddings=40, dropout=0.0)
    return DecoderConfig(**{**defaults, **kwargs})


def tiny_lm(variant="paper", seed=0, **kwargs) -> DecoderForCausalLM:
    torch.manual_seed(seed)
    return DecoderForCausalLM(tiny_config(**VARIANTS[variant], **kwargs)).eval()


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with the "decoder" preset's special tokens: [PAD]=0, [UNK]=1, <s>=2, </s>=3."""
    words = "the cat dog sat ran on a mat log red big small and".split()
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>",
                                   eos_token="</s>")


# ---------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, quoted",
    [
        (dict(hidden_size=30, num_attention_heads=4), "30"),
        (dict(position_embedding_type="alibi"), "alibi"),
        (dict(norm_position="sandwich"), "sandwich"),
        (dict(hidden_act="swishy"), "swishy"),
        (dict(num_hidden_layers=0), "0"),
        (dict(position_embedding_type="rotary", hidden_size=36, num_attention_heads=4), "9"),
    ],
)
def test_config_rejects_bad_values(kwargs, quoted):
    with pytest.raises(ValueError, match=quoted):
        tiny_config(**kwargs)


def test_config_defaults_are_the_paper_and_round_trip(tmp_path):
    config = DecoderConfig()
    assert (config.norm_position, config.position_embedding_type, config.scale_embedding, config.hidden_act) == (
        "post", "sinusoidal", True, "relu")
    assert config.tie_word_embeddings and config.use_cache
    config = tiny_config(**VARIANTS["gpt2"], use_cache=False)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is DecoderConfig
    assert {**loaded.to_dict(), "_name_or_path": ""} == config.to_dict()


# ---------------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_outputs(variant):
    model = tiny_lm(variant)
    model.set_attn_implementation("eager")
    ids = ids_tensor((BATCH, SEQ))
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (BATCH, SEQ, VOCAB)
    assert len(out.hidden_states) == 3 and all(h.shape == (BATCH, SEQ, HIDDEN) for h in out.hidden_states)
    assert_close(out.hidden_states[-1], model.model(ids).last_hidden_state)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (BATCH, 4, SEQ, SEQ)
    weights = out.attentions[0]  # A': rows sum to 1, nothing above the diagonal
    assert_close(weights.sum(-1), torch.ones(BATCH, 4, SEQ))
    assert weights.triu(1).abs().max() == 0
    assert getattr(out, CACHE_NAME).get_seq_length() == SEQ
    assert model(ids, logits_to_keep=1).logits.shape == (BATCH, 1, VOCAB)
    as_tuple = model(ids, return_dict=False)
    assert_close(as_tuple[0], out.logits)


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_reaches_every_parameter(variant):
    model = tiny_lm(variant).train()
    ids = ids_tensor((BATCH, SEQ))
    out = model(ids, labels=ids)
    # the loss is next-token cross-entropy: the model shifts the labels
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    assert_close(out.loss, expected)
    check_loss_reaches_every_parameter(model, out.loss)


@pytest.mark.parametrize("variant", ["paper", "gpt2"])
def test_save_and_reload_with_auto_classes(variant, tmp_path):
    model = tiny_lm(variant)
    ids = ids_tensor((BATCH, SEQ))
    reloaded = save_and_reload(model, tmp_path, AutoModelForCausalLM)
    assert type(reloaded) is DecoderForCausalLM
    assert_close(reloaded(ids).logits, model(ids).logits)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is DecoderModel
    assert_close(base(ids).last_hidden_state, model.model(ids).last_hidden_state)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("side", [None, "left", "right"])
def test_eager_equals_sdpa(variant, side):
    model = tiny_lm(variant)
    ids = ids_tensor((BATCH, SEQ))
    mask = None if side is None else random_padding_mask(side=side)
    model.set_attn_implementation("eager")
    eager = model(ids, attention_mask=mask).logits
    model.set_attn_implementation("sdpa")
    sdpa = model(ids, attention_mask=mask).logits
    keep = torch.ones(BATCH, SEQ, dtype=torch.bool) if mask is None else mask.bool()
    assert_close(eager[keep], sdpa[keep], msg=f"{variant} {side}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_causality(variant):
    model = tiny_lm(variant)
    ids = ids_tensor((BATCH, SEQ))
    t = 3
    changed = ids.clone()
    changed[:, t + 1] = (changed[:, t + 1] + 1) % VOCAB
    a, b = model(ids).logits, model(changed).logits
    assert_close(a[:, : t + 1], b[:, : t + 1])
    assert (a[:, t + 1] - b[:, t + 1]).abs().max() > 1e-4  # the changed token does change its own output


@pytest.mark.parametrize("variant", VARIANTS)
def test_incremental_cache_equals_full_forward(variant):
    model = tiny_lm(variant)
    ids = ids_tensor((BATCH, SEQ))
    full = model(ids).logits
    # the cache's keyword is `cache`; `past_key_values`, its name before transformers 5.24, works too
    for name in ("cache", "past_key_values"):
        first = model(ids[:, :4], use_cache=True)
        second = model(ids[:, 4:], **{name: getattr(first, CACHE_NAME)}, use_cache=True)
        assert_close(torch.cat([first.logits, second.logits], dim=1), full, msg=name)
        assert getattr(second, CACHE_NAME).get_seq_length() == SEQ


@pytest.mark.parametrize("variant", VARIANTS)
def test_generation_cache_static_and_left_padding(variant):
    model = tiny_lm(variant)
    ids = ids_tensor((3, 6), low=4)
    greedy = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    cached = model.generate(ids, **greedy)
    assert torch.equal(cached, model.generate(ids, use_cache=False, **greedy))
    assert torch.equal(cached, model.generate(ids, cache_implementation="static", **greedy))
    # a batch of prompts of different lengths, left-padded, continues each prompt as if it were alone
    lengths = [6, 3, 5]
    padded = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        padded[row, 6 - n:], mask[row, 6 - n:] = ids[row, :n], 1
    batch = model.generate(padded, attention_mask=mask, **greedy)[:, 6:]
    for row, n in enumerate(lengths):
        alone = model.generate(ids[row : row + 1, :n], **greedy)[0, n:]
        assert torch.equal(batch[row], alone), f"{variant} row {row}"


def test_sampling_and_beam_search():
    model = tiny_lm("gpt2")
    ids = ids_tensor((2, 5), low=4)
    kwargs = dict(max_new_tokens=5, pad_token_id=0, eos_token_id=None)
    torch.manual_seed(1)
    sample_a = model.generate(ids, do_sample=True, top_k=10, temperature=0.8, **kwargs)
    torch.manual_seed(1)
    sample_b = model.generate(ids, do_sample=True, top_k=10, temperature=0.8, **kwargs)
    assert sample_a.shape == (2, 10) and torch.equal(sample_a, sample_b)
    beams = model.generate(ids, num_beams=3, num_return_sequences=3, do_sample=False, output_scores=True,
                           return_dict_in_generate=True, **kwargs)
    assert beams.sequences.shape == (6, 10)
    uncached = model.generate(ids, num_beams=3, num_return_sequences=3, do_sample=False, use_cache=False, **kwargs)
    assert torch.equal(beams.sequences, uncached)
    # the best beam scores at least as well as greedy decoding (log-probability of the continuation)
    greedy = model.generate(ids, do_sample=False, **kwargs)

    def logprob(seqs):
        logits = model(seqs).logits[:, 4:-1].log_softmax(-1)
        return logits.gather(-1, seqs[:, 5:, None]).sum((1, 2))

    assert (logprob(beams.sequences[::3]) >= logprob(greedy) - 1e-5).all()


# ---------------------------------------------------------------------------------------------------- embeddings


def test_tied_embeddings_across_resize_and_reload(tmp_path):
    model = tiny_lm("gpt2")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model.resize_token_embeddings(VOCAB + 6, mean_resizing=False)
    assert model.config.vocab_size == VOCAB + 6
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.weight.shape == (VOCAB + 6, HIDDEN)
    reloaded = save_and_reload(model, tmp_path)
    assert reloaded.lm_head.weight is reloaded.model.embed_tokens.weight
    assert_close(reloaded.model.embed_tokens.weight, model.model.embed_tokens.weight, atol=0)
    ids = ids_tensor((2, SEQ), vocab_size=VOCAB + 6)
    assert_close(reloaded(ids).logits, model(ids).logits)
    untied = tiny_lm("paper", tie_word_embeddings=False)
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight


@pytest.mark.parametrize("offset", [0, 2])
def test_sinusoidal_positions_equal_the_formula(offset):
    """PE(pos, 2i) = sin(pos / 10000^(2i/C)), PE(pos, 2i+1) = cos(pos / 10000^(2i/C)) (paper section 3.5)."""
    model = DecoderModel(tiny_config(scale_embedding=False, position_offset=offset)).eval()
    with torch.no_grad():
        model.embed_tokens.weight.zero_()  # the first hidden state is then the position encoding alone
    ids = ids_tensor((1, SEQ))
    first = model(ids, output_hidden_states=True).hidden_states[0][0]
    expected = torch.zeros(SEQ, HIDDEN)
    for pos in range(SEQ):
        for i in range(0, HIDDEN, 2):
            angle = (pos + offset) / 10000 ** (i / HIDDEN)
            expected[pos, i], expected[pos, i + 1] = math.sin(angle), math.cos(angle)
    assert_close(first, expected)


def test_scale_embedding_multiplies_by_sqrt_hidden():
    scaled = DecoderModel(tiny_config(position_embedding_type="rotary")).eval()
    ids = ids_tensor((2, SEQ))
    first = scaled(ids, output_hidden_states=True).hidden_states[0]
    assert_close(first, scaled.embed_tokens(ids) * math.sqrt(HIDDEN))
    # passing inputs_embeds skips the lookup (and the scaling)
    embeds = torch.randn(2, SEQ, HIDDEN)
    assert_close(scaled(inputs_embeds=embeds, output_hidden_states=True).hidden_states[0], embeds)


# ---------------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors():
    model = tiny_lm("gpt2")  # learned positions, max_position_embeddings=40
    with pytest.raises(ValueError, match=f"token id {VOCAB}"):
        model(torch.tensor([[1, VOCAB]]))
    with pytest.raises(ValueError, match="max_position_embeddings=40"):
        model(ids_tensor((1, 41)))
    # the cache offset counts: 38 cached + 3 new tokens reach position 40
    past = getattr(model(ids_tensor((1, 38)), use_cache=True), CACHE_NAME)
    with pytest.raises(ValueError, match="38 cached"):
        model(ids_tensor((1, 3)), cache=past)
    with pytest.raises(ValueError, match="both as `cache` and as `past_key_values`"):
        model(ids_tensor((1, 1)), cache=past, past_key_values=past)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.generate(ids_tensor((1, 30), low=4), max_new_tokens=20, do_sample=False, eos_token_id=None)
    with pytest.raises(ValueError, match="exactly one"):
        model(None)
    # sinusoidal positions have no table: longer inputs work
    assert tiny_lm("paper")(ids_tensor((1, 45))).logits.shape == (1, 45, VOCAB)


# ---------------------------------------------------------------------------------------------------- training


def test_activation_checkpointing_gives_the_same_gradients():
    model = tiny_lm("gpt2").train()
    ids = ids_tensor((BATCH, SEQ))
    model(ids, labels=ids).loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    enable_checkpointing(model)
    assert model.model.layers[0].gradient_checkpointing
    out = model(ids, labels=ids, use_cache=True)
    out.loss.backward()
    assert getattr(out, CACHE_NAME) is None  # the cache is switched off under checkpointing
    for name, param in model.named_parameters():
        assert_close(param.grad, reference[name], atol=1e-6, msg=name)


def test_bf16_autocast_on_cpu():
    model = tiny_lm("gpt2").train()
    ids = ids_tensor((BATCH, SEQ))
    reference = model(ids, labels=ids).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, labels=ids)
    assert out.logits.dtype == torch.bfloat16
    assert abs(out.loss.item() - reference.item()) < 0.05
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def _lm_dataset(tokenizer):
    texts = ["the cat sat on the mat", "a dog ran", "the big red dog sat on a log", "a small cat",
             "the dog and the cat ran on the mat", "red log", "a big cat sat", "the small dog ran on a big log"]
    return [{"input_ids": tokenizer(t)["input_ids"] + [tokenizer.eos_token_id]} for t in texts]


def _train(tokenizer, tmp_path, batch, accumulation):
    model = tiny_lm("gpt2", vocab_size=len(tokenizer)).train()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=batch,
                             gradient_accumulation_steps=accumulation, max_steps=2, learning_rate=1e-2,
                             logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=_lm_dataset(tokenizer),
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    trainer.train()
    return [log["loss"] for log in trainer.state.log_history if "loss" in log], trainer


def test_trainer_with_gradient_accumulation(tokenizer, tmp_path):
    """Sequences of different lengths: the loss logged with 2 x 2 accumulation equals the 4-sequence batch's (the
    model sums the token losses and divides by the Trainer's num_items_in_batch)."""
    full, trainer = _train(tokenizer, tmp_path / "full", batch=4, accumulation=1)
    accumulated, _ = _train(tokenizer, tmp_path / "accumulated", batch=2, accumulation=2)
    assert len(full) == 2 and len(accumulated) == 2
    assert abs(full[0] - accumulated[0]) < 1e-5, (full, accumulated)
    assert abs(full[1] - accumulated[1]) < 1e-4, (full, accumulated)
    assert full[1] < full[0]
    # evaluation gathers the logits alone: with the cache on (TrainingArguments(use_cache=True) sets this), the KV
    # cache in the outputs is left out under either of its names (config.keys_to_ignore_at_inference)
    trainer.model.config.use_cache = True
    prediction = trainer.predict(_lm_dataset(tokenizer))
    assert type(prediction.predictions).__name__ == "ndarray", type(prediction.predictions)
    assert prediction.predictions.shape[0] == 8 and prediction.predictions.shape[-1] == len(tokenizer)
    trainer.save_model(str(tmp_path / "saved"))
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "saved")) is DecoderForCausalLM


def test_overfits_a_tiny_dataset(tokenizer):
    """Four sentences whose first two words tell them apart: the model learns to recite each one."""
    torch.manual_seed(0)
    model = DecoderForCausalLM(tiny_config(vocab_size=len(tokenizer), hidden_size=48, num_attention_heads=4,
                                           intermediate_size=64)).train()
    data = _lm_dataset(tokenizer)[:4]
    batch = tokenizer.pad(data, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(100):
        loss = model(**batch, labels=labels).loss
        if step == 0:
            initial = loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # what is left is the unavoidable guess of the first word after <s> (and of "the"/"a"'s successor)
    assert loss.item() < 0.3 < 2.0 < initial, (initial, loss.item())
    model.eval()
    for example in data:
        ids = example["input_ids"]
        out = model.generate(torch.tensor([ids[:3]]), max_new_tokens=len(ids) - 3, do_sample=False)
        assert out[0].tolist() == ids  # recites the sentence, eos included


# ---------------------------------------------------------------------------------------------------- pipelines


def test_text_generation_pipeline(tokenizer):
    model = tiny_lm("paper", vocab_size=len(tokenizer))
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    prompt = "the cat sat"
    text = generator(prompt, max_new_tokens=4, do_sample=False, eos_token_id=None)[0]["generated_text"]
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    full = model.generate(ids, max_new_tokens=4, do_sample=False, eos_token_id=None)[0]
    assert full.shape[0] == ids.shape[1] + 4
    # the pipeline returns the prompt followed by the decoded continuation
    assert text == prompt + tokenizer.decode(full[ids.shape[1]:], skip_special_tokens=True)


def test_feature_extraction_pipeline(tokenizer):
    torch.manual_seed(0)
    model = DecoderModel(tiny_config(vocab_size=len(tokenizer))).eval()
    extractor = pipeline("feature-extraction", model=model, tokenizer=tokenizer)
    features = torch.tensor(extractor("the dog ran on a log"))
    ids = tokenizer("the dog ran on a log", return_tensors="pt")["input_ids"]
    assert_close(features, model(ids).last_hidden_state, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- compile


def test_torch_compile():
    """Dynamo traces the whole forward in one graph (fullgraph); backend "eager" keeps the test fast on CPU."""
    model = tiny_lm("gpt2")
    ids = ids_tensor((2, SEQ))
    mask = random_padding_mask(batch=2, side="left")
    expected = model(ids, attention_mask=mask, use_cache=False).logits
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert_close(compiled(ids, attention_mask=mask, use_cache=False).logits, expected)
