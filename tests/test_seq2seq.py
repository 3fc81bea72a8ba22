"""The encoder-decoder family: Seq2SeqConfig, Seq2SeqModel, Seq2SeqForConditionalGeneration, the
seq2seq-generation pipeline, and everything a transformers user expects of them (Auto classes, generate,
Seq2SeqTrainer)."""

from __future__ import annotations

import math

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerFast,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    pipeline,
)

import w2vformer  # noqa: F401  (registers the Auto classes and the pipeline)
from w2vformer.modeling.attention import CACHE_NAME
from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig
from w2vformer.modeling.modeling_seq2seq import (
    Seq2SeqForConditionalGeneration,
    Seq2SeqModel,
    shift_tokens_right,
)
from w2vformer.pipelines import Seq2SeqGenerationPipeline

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

PAD, UNK, BOS, EOS, MASK = 0, 1, 2, 3, 4
TGT = 5  # target length in the tests (odd, differs from the source length SEQ=7)


def make_config(**kwargs) -> Seq2SeqConfig:
    defaults = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        encoder_layers=2,
        decoder_layers=3,  # differs from the encoder: catches a cache sized from the wrong depth
        num_attention_heads=4,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=24,
        dropout=0.0,
    )
    defaults.update(kwargs)
    return Seq2SeqConfig(**defaults)


# the variants whose code paths differ: the paper's default, BART's options, pre-norm with rotary positions
VARIANTS = {
    "paper": {},
    "bart": dict(position_embedding_type="learned", position_offset=2, embedding_layer_norm=True, hidden_act="gelu", scale_embedding=False),
    "prenorm_rotary": dict(norm_position="pre", position_embedding_type="rotary", hidden_act="silu"),
}


def make_model(seed=0, cls=Seq2SeqForConditionalGeneration, **kwargs):
    torch.manual_seed(seed)
    model = cls(make_config(**kwargs)).eval()
    with torch.no_grad():  # larger weights than the 0.02 init, so that outputs depend visibly on every input
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    return model


def source_and_target(seed=0):
    input_ids = ids_tensor((BATCH, SEQ), low=5, seed=seed)
    mask = random_padding_mask(BATCH, SEQ, side="right", seed=seed)
    input_ids = input_ids.masked_fill(mask == 0, PAD)
    labels = ids_tensor((BATCH, TGT), low=5, seed=seed + 1)
    return input_ids, mask, labels


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with the seq2seq preset's special tokens ([PAD]=0, [UNK]=1, <s>=2, </s>=3, [MASK]=4)."""
    words = "the cat dog sat ran on under a mat rug big small red blue".split()
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "<s>", "</s>", "[MASK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>", eos_token="</s>",
        mask_token="[MASK]", model_max_length=24,
    )


# ----------------------------------------------------------------------------------------------- config


def test_config_defaults_are_the_original_transformer():
    c = Seq2SeqConfig()
    assert (c.hidden_size, c.encoder_layers, c.decoder_layers, c.num_attention_heads, c.intermediate_size) == (512, 6, 6, 8, 2048)
    assert (c.hidden_act, c.position_embedding_type, c.norm_position, c.scale_embedding) == ("relu", "sinusoidal", "post", True)
    assert c.is_encoder_decoder and c.tie_word_embeddings and c.use_cache
    assert (c.pad_token_id, c.decoder_start_token_id, c.eos_token_id) == (PAD, BOS, EOS)
    # generate sizes its decoder cache from this view of the config
    assert make_config().get_text_config(decoder=True).num_hidden_layers == 3


@pytest.mark.parametrize(
    "kwargs, quoted",
    [
        (dict(hidden_size=30, num_attention_heads=4), "30"),
        (dict(hidden_act="nope"), "nope"),
        (dict(position_embedding_type="alibi"), "alibi"),
        (dict(norm_position="sandwich"), "sandwich"),
        (dict(decoder_start_token_id=VOCAB), str(VOCAB)),
        (dict(dropout=1.5), "1.5"),
        (dict(decoder_layers=0), "0"),
    ],
)
def test_config_rejects_bad_values(kwargs, quoted):
    with pytest.raises(ValueError, match=quoted):
        make_config(**kwargs)


# ----------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_attention_weights(variant):
    model = make_model(**VARIANTS[variant])
    model.set_attn_implementation("eager")
    input_ids, mask, labels = source_and_target()
    out = model(input_ids, attention_mask=mask, labels=labels, output_attentions=True, output_hidden_states=True)
    assert out.logits.shape == (BATCH, TGT, VOCAB)
    assert out.encoder_last_hidden_state.shape == (BATCH, SEQ, HIDDEN)
    assert len(out.encoder_hidden_states) == 3 and len(out.decoder_hidden_states) == 4
    assert [a.shape for a in out.encoder_attentions] == [(BATCH, 4, SEQ, SEQ)] * 2
    assert [a.shape for a in out.decoder_attentions] == [(BATCH, 4, TGT, TGT)] * 3
    assert [a.shape for a in out.cross_attentions] == [(BATCH, 4, TGT, SEQ)] * 3
    for a in (*out.encoder_attentions, *out.decoder_attentions, *out.cross_attentions):
        assert_close(a.sum(-1), torch.ones(a.shape[:-1]), msg="rows of A' sum to 1")
    # padded source tokens get no attention; future target tokens get none either
    for a in (*out.encoder_attentions, *out.cross_attentions):
        assert (a.masked_select(mask[:, None, None, :] == 0) < 1e-6).all()
    future = torch.triu(torch.ones(TGT, TGT, dtype=torch.bool), diagonal=1)
    for a in out.decoder_attentions:
        assert (a[..., future] < 1e-6).all()
    # the last recorded hidden state is what the head reads
    assert_close(out.decoder_hidden_states[-1], model.model.decoder(
        input_ids=shift_tokens_right(labels, PAD, BOS), encoder_hidden_states=out.encoder_last_hidden_state,
        encoder_attention_mask=mask).last_hidden_state)
    # encoder_outputs as a tuple (what some callers pass) gives the same logits
    again = model(attention_mask=mask, labels=labels, encoder_outputs=(out.encoder_last_hidden_state,))
    assert_close(again.logits, out.logits)
    # return_dict=False gives a tuple with the loss first
    as_tuple = model(input_ids, attention_mask=mask, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.loss)


def test_base_model_and_shift_tokens_right():
    model = make_model(cls=Seq2SeqModel)
    input_ids, mask, labels = source_and_target()
    labels[0, -2:] = -100
    decoder_input_ids = shift_tokens_right(labels, PAD, BOS)
    assert torch.equal(decoder_input_ids[:, 0], torch.full((BATCH,), BOS))
    assert torch.equal(decoder_input_ids[1:, 1:], labels[1:, :-1])
    assert decoder_input_ids[0, -1] == PAD  # -100 becomes padding
    out = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids)
    assert out.last_hidden_state.shape == (BATCH, TGT, HIDDEN)
    assert model.get_encoder() is model.encoder


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_reaches_every_parameter(variant):
    model = make_model(**VARIANTS[variant]).train()
    input_ids, mask, labels = source_and_target()
    loss = model(input_ids, attention_mask=mask, labels=labels).loss
    check_loss_reaches_every_parameter(model, loss)


def test_loss_is_token_mean_and_honours_num_items_in_batch():
    model = make_model()
    input_ids, mask, labels = source_and_target()
    labels[:4, 3:] = -100
    out = model(input_ids, attention_mask=mask, labels=labels)
    keep = labels != -100
    logp = out.logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    assert_close(out.loss, -logp[keep].mean())  # no second shift: position t predicts labels[:, t]
    summed = model(input_ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(100)).loss
    assert_close(summed, -logp[keep].sum() / 100)


@pytest.mark.parametrize("variant", VARIANTS)
def test_eager_equals_sdpa_with_and_without_padding(variant):
    model = make_model(**VARIANTS[variant])
    input_ids, mask, labels = source_and_target()
    for attention_mask in (None, mask):
        model.set_attn_implementation("eager")
        eager = model(input_ids, attention_mask=attention_mask, labels=labels).logits
        model.set_attn_implementation("sdpa")
        sdpa = model(input_ids, attention_mask=attention_mask, labels=labels).logits
        assert_close(eager, sdpa, atol=1e-5, msg=f"mask={attention_mask is not None}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_decoder_is_causal(variant):
    model = make_model(**VARIANTS[variant])
    input_ids, mask, labels = source_and_target()
    logits = model(input_ids, attention_mask=mask, labels=labels).logits
    changed = labels.clone()
    changed[:, 3] = (changed[:, 3] + 1 - 5) % (VOCAB - 5) + 5  # decoder input 4 changes
    logits2 = model(input_ids, attention_mask=mask, labels=changed).logits
    assert_close(logits[:, :4], logits2[:, :4], msg="positions before the change")
    assert (logits[:, 4] - logits2[:, 4]).abs().max() > 1e-3


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_padding_invariance(variant):
    """More padding, on the right or (positions follow the mask) on the left, changes nothing."""
    model = make_model(**VARIANTS[variant])
    input_ids, mask, labels = source_and_target()
    logits = model(input_ids, attention_mask=mask, labels=labels).logits
    extra = 3
    right = torch.cat([input_ids, torch.full((BATCH, extra), PAD)], 1)
    right_mask = torch.cat([mask, torch.zeros(BATCH, extra, dtype=mask.dtype)], 1)
    assert_close(model(right, attention_mask=right_mask, labels=labels).logits, logits, msg="right padding")
    # left padding: move every row's tokens to the end
    left, left_mask = torch.full_like(right, PAD), torch.zeros_like(right_mask)
    for i, n in enumerate(mask.sum(1).tolist()):
        left[i, -n:], left_mask[i, -n:] = input_ids[i, :n], 1
    assert_close(model(left, attention_mask=left_mask, labels=labels).logits, logits, msg="left padding")


@pytest.mark.parametrize("variant", VARIANTS)
def test_cache_equals_no_cache(variant):
    model = make_model(**VARIANTS[variant])
    input_ids, mask, labels = source_and_target()
    decoder_input_ids = shift_tokens_right(labels, PAD, BOS)
    full = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids, use_cache=False).logits
    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=mask)
    past, steps = None, []
    for t in range(TGT):
        name = ("cache", "past_key_values")[t % 2]  # `past_key_values`: the cache's name before transformers 5.24
        out = model(attention_mask=mask, encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids[:, t : t + 1],
                    use_cache=True, **{name: past})
        past = getattr(out, CACHE_NAME)
        steps.append(out.logits)
    assert_close(torch.cat(steps, 1), full, msg="step by step with the cache")
    assert past.self_attention_cache.get_seq_length() == TGT and len(past.self_attention_cache.layers) == 3
    greedy = dict(max_new_tokens=8, do_sample=False)
    assert torch.equal(model.generate(input_ids, attention_mask=mask, **greedy),
                       model.generate(input_ids, attention_mask=mask, use_cache=False, **greedy))


def test_sinusoidal_positions_equal_the_formula():
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)) (paper, section 3.5)."""
    model = make_model(hidden_size=30, num_attention_heads=3)  # d=30: catches an off-by-one in the pairing
    zeros = torch.zeros(2, SEQ, 30)
    hidden = model.model.encoder(inputs_embeds=zeros, output_hidden_states=True).hidden_states[0]
    d = 30
    expected = torch.tensor(
        [[math.sin(pos / 10000 ** (i / d)) if i % 2 == 0 else math.cos(pos / 10000 ** ((i - 1) / d)) for i in range(d)]
         for pos in range(SEQ)]
    )
    assert_close(hidden, expected.expand(2, -1, -1), atol=1e-6)
    # the decoder continues the positions after the cached ones
    dec_hidden = model.model.decoder(inputs_embeds=torch.zeros(1, 2, 30), encoder_hidden_states=torch.zeros(1, 3, 30),
                                     output_hidden_states=True).hidden_states[0]
    assert_close(dec_hidden[0], expected[:2], atol=1e-6)


# ----------------------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    model = make_model(**VARIANTS["bart"])
    input_ids, mask, labels = source_and_target()
    with pytest.raises(ValueError, match=f"token id {VOCAB}"):
        model(input_ids.masked_fill(input_ids == input_ids[0, 0], VOCAB), labels=labels)
    with pytest.raises(ValueError, match="token id 120"):
        model(input_ids, decoder_input_ids=torch.full((2, 3), 120))
    too_long = ids_tensor((2, 25), low=5)
    with pytest.raises(ValueError, match="max_position_embeddings=24"):
        model(too_long, labels=labels[:2])
    with pytest.raises(ValueError, match="max_position_embeddings=24"):
        model(input_ids[:2], decoder_input_ids=too_long)
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model(encoder_outputs=(torch.zeros(2, 3, HIDDEN),))
    # sinusoidal positions have no length limit
    assert make_model()(too_long, labels=labels[:2]).logits.shape == (2, TGT, VOCAB)


# ----------------------------------------------------------------------------------------------- transformers API


def test_save_load_auto_classes(tmp_path):
    model = make_model(**VARIANTS["bart"])
    with torch.no_grad():
        model.final_logits_bias.normal_()
    input_ids, mask, labels = source_and_target()
    logits = model(input_ids, attention_mask=mask, labels=labels).logits
    reloaded = save_and_reload(model, tmp_path / "lm", AutoModelForSeq2SeqLM)
    assert type(reloaded) is Seq2SeqForConditionalGeneration
    assert_close(reloaded(input_ids, attention_mask=mask, labels=labels).logits, logits)
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "lm"), Seq2SeqConfig)
    base = AutoModel.from_pretrained(tmp_path / "lm").eval()
    assert type(base) is Seq2SeqModel
    assert_close(base(input_ids, attention_mask=mask, decoder_input_ids=shift_tokens_right(labels, PAD, BOS)).last_hidden_state,
                 model.model(input_ids, attention_mask=mask, decoder_input_ids=shift_tokens_right(labels, PAD, BOS)).last_hidden_state)


def _check_tied(model):
    shared = model.model.shared.weight
    assert model.model.encoder.embed_tokens.weight is shared
    assert model.model.decoder.embed_tokens.weight is shared
    assert model.lm_head.weight is shared


def test_tied_embeddings_one_tensor_across_resize_and_reload(tmp_path):
    model = make_model()
    _check_tied(model)
    model.resize_token_embeddings(VOCAB + 4, pad_to_multiple_of=8)
    new_vocab = 104
    _check_tied(model)
    assert model.config.vocab_size == new_vocab and model.final_logits_bias.shape == (1, new_vocab)
    input_ids, mask, labels = source_and_target()
    labels[0, 0] = new_vocab - 1  # a new token id is now valid
    logits = model(input_ids, attention_mask=mask, labels=labels).logits
    assert logits.shape == (BATCH, TGT, new_vocab)
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "model.shared.weight" in keys and "lm_head.weight" not in keys
    reloaded = Seq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    _check_tied(reloaded)
    assert_close(reloaded(input_ids, attention_mask=mask, labels=labels).logits, logits)
    # untied: four separate tensors
    untied = make_model(tie_word_embeddings=False)
    assert untied.lm_head.weight is not untied.model.shared.weight
    assert untied.model.encoder.embed_tokens.weight is not untied.model.shared.weight


def test_generate_greedy_sampling_beam_static():
    model = make_model()
    input_ids, mask, _ = source_and_target()
    greedy = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    assert greedy.shape[0] == BATCH and (greedy[:, 0] == BOS).all()
    # greedy takes the argmax of the next-token logits at every step
    logits = model(input_ids, attention_mask=mask, decoder_input_ids=greedy[:, :-1]).logits
    finished = (greedy[:, :-1] == EOS).cumsum(1) > 0
    assert torch.equal(logits.argmax(-1)[~finished], greedy[:, 1:][~finished])
    static = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False, cache_implementation="static")
    assert torch.equal(static, greedy)
    beams = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, num_beams=3, num_return_sequences=2,
                           output_scores=True, return_dict_in_generate=True)
    assert beams.sequences.shape[0] == 2 * BATCH and beams.sequences_scores.shape == (2 * BATCH,)
    torch.manual_seed(0)
    sampled = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, do_sample=True, top_k=10)
    assert sampled.shape[0] == BATCH and sampled.max() < VOCAB


def test_left_padded_source_generates_as_unpadded():
    model = make_model(**VARIANTS["bart"])
    input_ids, mask, _ = source_and_target()
    batch = model.generate(input_ids, attention_mask=mask, max_new_tokens=6, num_beams=2)
    left, left_mask = torch.full_like(input_ids, PAD), torch.zeros_like(mask)
    for i, n in enumerate(mask.sum(1).tolist()):
        left[i, -n:], left_mask[i, -n:] = input_ids[i, :n], 1
        single = model.generate(input_ids[i : i + 1, :n], max_new_tokens=6, num_beams=2)
        assert torch.equal(single[0], batch[i, : single.shape[1]])
    assert torch.equal(model.generate(left, attention_mask=left_mask, max_new_tokens=6, num_beams=2), batch)


def test_activation_checkpointing_same_gradients():
    model = make_model(**VARIANTS["prenorm_rotary"]).train()
    input_ids, mask, labels = source_and_target()
    model(input_ids, attention_mask=mask, labels=labels).loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    enable_checkpointing(model)
    assert is_checkpointing(model)
    model(input_ids, attention_mask=mask, labels=labels).loss.backward()
    for n, p in model.named_parameters():
        assert_close(p.grad, grads[n], atol=1e-5, msg=n)


def test_bf16_autocast_on_cpu():
    model = make_model()
    input_ids, mask, labels = source_and_target()
    reference = model(input_ids, attention_mask=mask, labels=labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids, attention_mask=mask, labels=labels)
        generated = model.generate(input_ids, attention_mask=mask, max_new_tokens=4)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    assert abs(out.loss.item() - reference.loss.item()) < 0.05 * reference.loss.item()
    assert generated.shape[0] == BATCH
    bf16 = make_model().to(torch.bfloat16)  # a bf16 model, no autocast
    assert bf16(input_ids, attention_mask=mask, labels=labels).logits.dtype == torch.bfloat16


# ----------------------------------------------------------------------------------------------- training


def test_seq2seq_trainer_two_steps_with_grad_accumulation_and_predict_with_generate(tmp_path):
    tokenizer = make_tokenizer()
    model = make_model(vocab_size=len(tokenizer), dropout=0.0)
    # target lengths 2, 9, 3, 4 tokens: no two pairs hold the same number of label tokens
    pairs = [("the cat sat on the mat", "cat"), ("the dog ran", "the big red dog ran under a rug"),
             ("a small blue cat", "a cat"), ("the rug", "the big mat")]
    examples = [{"input_ids": tokenizer(s)["input_ids"], "labels": tokenizer(t)["input_ids"]} for s, t in pairs]
    collator = DataCollatorForSeq2Seq(tokenizer, model=model)

    # the loss of step 1 over all 4 examples (2 micro-batches of 2): every label token weighs the same
    full = collator(examples)
    with torch.no_grad():
        logits = model(input_ids=full["input_ids"], attention_mask=full["attention_mask"],
                       decoder_input_ids=full["decoder_input_ids"]).logits
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), full["labels"].flatten(), ignore_index=-100).item()
    # the mean of the two micro-batch means (the bug to catch) is far from it, whichever way the examples pair up
    for first in ([0, 1], [0, 2], [0, 3]):
        second = [i for i in range(4) if i not in first]
        means = [model(**collator([examples[i] for i in half])).loss.item() for half in (first, second)]
        assert abs(sum(means) / 2 - expected) > 1e-3

    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=2,
        learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
        predict_with_generate=True, generation_max_length=8, per_device_eval_batch_size=4, disable_tqdm=True,
    )
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=examples, eval_dataset=examples,
                             data_collator=collator, processing_class=tokenizer)
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2
    assert abs(losses[0] - expected) < 1e-5, (losses[0], expected)
    prediction = trainer.predict(examples)
    generated = torch.as_tensor(prediction.predictions)
    # generation stops at generation_max_length=8; the trainer pads its output to the generation config's max_length
    assert generated.shape[0] == 4 and (generated[:, 0] == BOS).all() and (generated[:, 8:] == PAD).all()
    assert math.isfinite(prediction.metrics["test_loss"])
    texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)


def test_tiny_model_learns_to_reverse():
    torch.manual_seed(0)
    model = Seq2SeqForConditionalGeneration(
        make_config(vocab_size=13, encoder_layers=1, decoder_layers=1, max_position_embeddings=16)
    )
    source = torch.randint(5, 13, (24, 5))
    eos = torch.full((24, 1), EOS)
    target = torch.cat([source.flip(1), eos], 1)
    source = torch.cat([source, eos], 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model(source, labels=target).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    model.eval()
    generated = model.generate(source, max_new_tokens=8, do_sample=False)
    assert torch.equal(generated[:, 1 : target.shape[1] + 1], target)


# ----------------------------------------------------------------------------------------------- pipeline


def test_seq2seq_generation_pipeline_returns_text(tmp_path):
    tokenizer = make_tokenizer()
    model = make_model(vocab_size=len(tokenizer))
    with torch.no_grad():
        model.final_logits_bias[:, EOS + 1 :] = 5.0  # prefer words over special tokens for a few steps
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = pipeline("seq2seq-generation", model=str(tmp_path), max_new_tokens=5)
    assert isinstance(generator, Seq2SeqGenerationPipeline)
    out = generator("the cat sat on the mat")
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0]["generated_text"], str)
    # the text is the decoded greedy generation of the model
    ids = model.generate(**tokenizer("the cat sat on the mat", return_tensors="pt"), max_new_tokens=5)
    assert out[0]["generated_text"] == tokenizer.decode(ids[0], skip_special_tokens=True)
    assert out[0]["generated_text"]  # words, not only special tokens (the bias above)
    several = generator(["the dog ran", "a red rug"], num_beams=2, num_return_sequences=2)
    assert len(several) == 2 and all(len(r) == 2 for r in several)
    batch = generator(["the dog ran", "a red rug"])
    assert [type(r) for r in batch] == [dict, dict]
    tensors = generator("the dog", return_tensors=True)
    assert tensors[0]["generated_token_ids"][0] == BOS
    with pytest.raises(ValueError, match="string"):
        generator(42)
