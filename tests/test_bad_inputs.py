"""The bad-input catalogue: each bad input raises a documented exception whose message names the problem
(and the fix), and leaves no partial output behind.

Word-vector files (truncated binary, header/body disagreement, wrong-width rows, duplicate words, NaN/inf,
non-UTF-8 words, unknown format, fastText .bin models, damaged gzip) are catalogued in
tests/test_convert_vectors.py (BAD_INPUTS, and the arbitrary-bytes property); they are not repeated here.

Where the error comes from transformers (``AutoModel.from_pretrained`` on a damaged folder) its message is
accepted when it names the problem; our own loaders must also name the file.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModel

import w2vformer  # noqa: F401  (registers the model types)
from w2vformer import (
    DecoderConfig,
    DecoderForCausalLM,
    EncoderConfig,
    EncoderModel,
    Seq2SeqConfig,
    Seq2SeqForConditionalGeneration,
    Word2VecConfig,
    Word2VecModel,
)
from w2vformer.conversion.embedding_init import init_embeddings_from_word2vec
from w2vformer.conversion.vectors import build_wordlevel_tokenizer, checkpoint_to_vectors, read_vectors, write_vectors
from w2vformer.conversion.word2vec_format import write_word2vec
from w2vformer.hub import write_word2vec_vectors
from w2vformer.keyedvectors import WordVectors
from w2vformer.tokenization import train_tokenizer
from w2vformer.training.lm import train_transformer
from w2vformer.training.word2vec import train_word2vec
from w2vformer.training.word2vec_data import Word2VecDataset, count_tokens

from common import HIDDEN, INTERMEDIATE, VOCAB

SIZES = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=4, intermediate_size=INTERMEDIATE)

# ------------------------------------------------------------------------------------------ configs
# (family, bad fields, pattern the message must match: the field, the offending value and what is allowed)
TRANSFORMER_CASES = [
    (dict(hidden_size=30), r"hidden_size \(30\) must be divisible by num_attention_heads \(4\)"),
    (dict(position_embedding_type="absolute"), r"^(?=.*position_embedding_type)(?=.*'absolute')(?=.*sinusoidal)"),
    (dict(norm_position="middle"), r"^(?=.*norm_position)(?=.*'middle')(?=.*'post', 'pre')"),
    (dict(hidden_act="swishy"), r"hidden_act.*'swishy'.*relu"),
    (dict(hidden_size=12, position_embedding_type="rotary"), r"rotary positions need an even head dim.*12 / 4 = 3"),
    (dict(vocab_size=0), r"vocab_size must be .*(at least 1|positive).*0"),
    (dict(hidden_size=32.0), r"hidden_size must be .*int.*32\.0"),
    (dict(max_position_embeddings=0), r"max_position_embeddings.*(0\)|got 0)"),
    (dict(pad_token_id=VOCAB), rf"^(?=.*pad_token_id.*{VOCAB})(?=.*{VOCAB - 1})"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1\.0"),
    (dict(attention_dropout=-0.1), r"attention_dropout must be in \[0, 1\), got -0\.1"),
    (dict(layer_norm_eps=0.0), r"layer_norm_eps must be positive, got 0\.0"),
    (dict(position_offset=-1), r"position_offset.*-1"),
]
FAMILY_CONFIGS = {
    "encoder": (EncoderConfig, dict(num_hidden_layers=2)),
    "decoder": (DecoderConfig, dict(num_hidden_layers=2)),
    "seq2seq": (Seq2SeqConfig, dict(encoder_layers=2, decoder_layers=2)),
}
CONFIG_CASES = [
    (family, fields, pattern) for family in FAMILY_CONFIGS for fields, pattern in TRANSFORMER_CASES
] + [
    ("encoder", dict(num_hidden_layers=0), r"num_hidden_layers must be .*0"),
    ("encoder", dict(type_vocab_size=-1), r"type_vocab_size \(-1\)"),
    ("decoder", dict(num_hidden_layers=0), r"num_hidden_layers must be a positive integer, got 0"),
    ("seq2seq", dict(decoder_layers=0), r"decoder_layers must be a positive integer, got 0"),
    ("seq2seq", dict(eos_token_id=150), rf"eos_token_id=150 is outside the vocabulary of size {VOCAB}"),
    ("seq2seq", dict(decoder_start_token_id=-1), r"decoder_start_token_id=-1 is outside the vocabulary"),
    ("word2vec", dict(objective="sg"), r"objective must be one of \('skipgram', 'cbow'\), got 'sg'"),
    ("word2vec", dict(loss="ns"), r"loss must be one of .*'negative_sampling'.*got 'ns'"),
    ("word2vec", dict(negative=0), r"negative=0 with loss='negative_sampling'.*set negative >= 1"),
    ("word2vec", dict(window=0), r"window must be >= 1, got 0"),
    ("word2vec", dict(window=2.5), r"window must be an integer, got 2\.5"),
    ("word2vec", dict(vector_size=0), r"vector_size must be >= 1, got 0"),
    ("word2vec", dict(sample=-1), r"sample must be >= 0.*got -1"),
    ("word2vec", dict(min_count=-1), r"min_count must be >= 0, got -1"),
    ("word2vec", dict(alpha=0), r"alpha .* must be > 0, got 0"),
    ("word2vec", dict(min_alpha=0.5), r"min_alpha must be in \[0, alpha=0\.025\], got 0\.5"),
    ("word2vec", dict(epochs=0), r"epochs must be >= 1, got 0"),
    ("word2vec", dict(pad_token_id=VOCAB), rf"pad_token_id must be None or an id in \[0, {VOCAB}\), got {VOCAB}"),
    ("word2vec", dict(ns_exponent=float("nan")), r"ns_exponent must be a finite number, got nan"),
    ("word2vec", dict(cbow_mean=1), r"cbow_mean must be True or False, got 1"),
    ("word2vec", dict(vocab_size=1, loss="hierarchical_softmax", pad_token_id=None),
     r"hierarchical_softmax needs vocab_size >= 2"),
]


@pytest.mark.parametrize("family,fields,pattern", CONFIG_CASES,
                         ids=[f"{f}-{'-'.join(k)}" for f, k, _ in CONFIG_CASES])
def test_invalid_config_is_a_value_error_quoting_the_value(family, fields, pattern):
    if family == "word2vec":
        cls, kwargs = Word2VecConfig, dict(vocab_size=VOCAB)
    else:
        cls, depth = FAMILY_CONFIGS[family]
        kwargs = dict(SIZES, **depth)
    with pytest.raises(ValueError, match=pattern):
        cls(**{**kwargs, **fields})


# --------------------------------------------------------------------------------- checkpoint folders


def _damage(folder, kind):
    weights, config = folder / "model.safetensors", folder / "config.json"
    if kind == "missing weights":
        weights.unlink()
    elif kind == "truncated weights":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif kind == "corrupted header":
        data = bytearray(weights.read_bytes())
        data[:8] = b"\xff" * 8  # header length: absurd
        weights.write_bytes(bytes(data))
    elif kind == "empty weights":
        weights.write_bytes(b"")
    elif kind == "config not JSON":
        config.write_text("{not json")
    elif kind == "wrong shapes":
        fields = json.loads(config.read_text())
        fields["hidden_size" if "hidden_size" in fields else "vector_size"] = 48
        config.write_text(json.dumps(fields))


DAMAGES = ["missing weights", "truncated weights", "corrupted header", "empty weights", "config not JSON",
           "wrong shapes"]
# transformers' own messages (accepted: each names the problem; safetensors' names no file, see RELIABILITY.md)
AUTOMODEL_ERRORS = {
    "missing weights": (OSError, r"no file named model\.safetensors"),
    "truncated weights": (Exception, r"deserializing header: incomplete metadata, file not fully covered"),
    "corrupted header": (Exception, r"deserializing header: header too large"),
    "empty weights": (Exception, r"deserializing header: header too small"),
    "config not JSON": (OSError, r"config\.json' is not a valid JSON file"),
    "wrong shapes": (RuntimeError, r"ignore_mismatched_sizes"),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    EncoderModel(EncoderConfig(**SIZES, num_hidden_layers=1)).save_pretrained(root / "encoder")
    words = [f"w{i}" for i in range(20)]
    write_word2vec(root / "v.bin", words, np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32),
                   progress=False)
    from w2vformer.conversion.vectors import vectors_to_checkpoint

    vectors_to_checkpoint(root / "v.bin", root / "word2vec", progress=False)
    return root


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("family", ["encoder", "word2vec"])
def test_damaged_checkpoint_folder_gives_a_clear_error(checkpoints, tmp_path, family, damage):
    folder = tmp_path / family
    shutil.copytree(checkpoints / family, folder)
    _damage(folder, damage)
    error, pattern = AUTOMODEL_ERRORS[damage]
    with pytest.raises(error, match=pattern):
        AutoModel.from_pretrained(folder)
    if family != "word2vec":
        return
    # our own readers of a Word2Vec folder: the file is named; nothing is written
    ours = {
        "missing weights": (OSError, r"no file named model\.safetensors"),
        "config not JSON": (ValueError, rf"{folder}/config\.json' is not valid JSON.*save the checkpoint again"),
    }
    error, pattern = ours.get(damage, (ValueError, rf"{folder}/model\.safetensors' is not a readable safetensors "
                                                   r"file.*truncated or corrupted"))
    if damage != "wrong shapes":  # a vector reader needs only in_embed and the tokenizer: no mismatch to find
        with pytest.raises(error, match=pattern):
            read_vectors(folder)
        with pytest.raises(FileNotFoundError if damage == "missing weights" else error,
                           match=r"no model\.safetensors" if damage == "missing weights" else pattern):
            WordVectors.from_pretrained(folder)
        with pytest.raises(FileNotFoundError if damage == "missing weights" else error,
                           match=r"no model\.safetensors" if damage == "missing weights" else pattern):
            write_word2vec_vectors(folder)
        assert not any(folder.glob("*vectors.bin*")), "a failed export left a file behind"
        with pytest.raises(error, match=pattern):
            checkpoint_to_vectors(folder, tmp_path / "out" / "vectors.txt")
        assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
    model = EncoderModel(EncoderConfig(**{**SIZES, "vocab_size": 22}, num_hidden_layers=1))
    before = model.get_input_embeddings().weight.detach().clone()
    tokenizer = build_wordlevel_tokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(20)])
    if damage == "config not JSON":
        with pytest.raises(ValueError, match=pattern):
            init_embeddings_from_word2vec(model, tokenizer, folder)
    else:
        with pytest.raises(AUTOMODEL_ERRORS[damage][0], match=AUTOMODEL_ERRORS[damage][1]):
            init_embeddings_from_word2vec(model, tokenizer, folder)
    assert torch.equal(model.get_input_embeddings().weight, before), "a failed init changed the embeddings"


# ------------------------------------------------------------------------------------------- corpora

BAD_CORPORA = {
    # name: (content, pattern for train_tokenizer / train_word2vec / Word2VecDataset, pattern for train_transformer)
    "empty": (b"", r"empty", r"no text in .*empty or blank"),
    "blank lines": (b"\n  \n\t\n", r"empty", r"no text in .*empty or blank"),
    "binary": (bytes(range(256)) * 8, r"binary.* is not valid UTF-8: byte 0x80 at byte offset 128",
               r"binary.* is not UTF-8 text: undecodable byte at offset 128"),
    "latin-1": ("café crème\n".encode("latin-1") * 3,
                r"latin-1.* is not valid UTF-8: byte 0xe9 at byte offset 3.*iconv",
                r"latin-1.* is not UTF-8 text: undecodable byte at offset 3.*iconv"),
}


@pytest.mark.parametrize("case", sorted(BAD_CORPORA))
def test_bad_corpus_is_refused_by_every_trainer(tmp_path, case):
    content, pattern, lm_pattern = BAD_CORPORA[case]
    path = tmp_path / f"{case}.txt"
    path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=pattern):
        train_tokenizer(path, min_count=1, show_progress=False)
    with pytest.raises(ValueError, match=pattern):
        train_word2vec(path, min_count=1, vector_size=8, epochs=1, threads=1, progress=False,
                       output_dir=out / "w2v")
    with pytest.raises(ValueError, match=lm_pattern):
        train_transformer("clm", [path], output_dir=out / "lm", progress=False)
    tokenizer = build_wordlevel_tokenizer(["[PAD]", "[UNK]", "café", "crème"])
    config = Word2VecConfig(vocab_size=len(tokenizer), min_count=1)
    if case in ("binary", "latin-1"):  # an empty corpus counts zeros, refused when the dataset is built
        with pytest.raises(ValueError, match=pattern):
            count_tokens(tokenizer, path, show_progress=False)
        with pytest.raises(ValueError, match=pattern):
            next(iter(Word2VecDataset(path, tokenizer, config, np.ones(len(tokenizer)))))
    else:
        with pytest.raises(ValueError, match=r"token_counts are all zero"):
            Word2VecDataset(path, tokenizer, config, count_tokens(tokenizer, path, show_progress=False))
    assert not out.exists() or not any(out.rglob("*.safetensors")), "a failed run left weights behind"


def _peak_rss_growth(fn):
    """(result, bytes the peak resident memory grew by while ``fn`` ran) on Linux."""
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")

    def hwm():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    before = hwm()
    result = fn()
    return result, hwm() - before


def test_one_huge_line_is_streamed_in_bounded_memory_or_refused(tmp_path):
    """A 48 MiB (50 MB) file that is one line (no newline anywhere).

    Why 50 MB stands for any size: the readers hold a bounded buffer of a line, never the line. The tokenizer
    and word2vec readers cut a line at whitespace every 64 Ki characters and batch at most 64 Ki characters;
    train_transformer reads at most 8 MiB + 1 bytes of a line and refuses a longer one. A reader that holds
    the whole line needs at least the line's size (48 MiB of bytes, 2 x that decoded to a str of 2-byte
    characters), which the growth bound (3/4 of the file's size) catches; with bounded buffers the growth does
    not depend on the size, so a larger file would only make the test slower. (Measured here: ~30 MiB of
    growth for 16 MiB and for 64 MiB lines; with the earlier 1 Mi-character batches, 170 MiB for 16 MiB.)
    """
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), 40)) + "ö" for _ in range(30)]  # 2-byte char: real UTF-8
    chunk = " ".join(rng.choice(words, 4096)).encode() + b" "
    path = tmp_path / "one-line.txt"
    with open(path, "wb") as f:
        for _ in range((48 << 20) // len(chunk) + 1):
            f.write(chunk)
    size = path.stat().st_size
    assert size >= 48 << 20 and b"\n" not in path.read_bytes()[:1 << 20]

    tok, growth = _peak_rss_growth(lambda: train_tokenizer(path, min_count=1, cjk="keep", nfkc=False,
                                                           show_progress=False))
    assert len(tok) == 2 + len(words)
    assert growth < 0.75 * size, f"train_tokenizer: peak memory grew by {growth >> 20} MiB for a {size >> 20} MiB line"

    small = tmp_path / "small.txt"
    small.write_text(" ".join(words) + "\n")
    train_word2vec(small, min_count=1, vector_size=4, window=2, epochs=1, threads=1, progress=False)  # JIT warm-up
    (model, tok), growth = _peak_rss_growth(lambda: train_word2vec(
        path, min_count=1, vector_size=4, window=2, epochs=1, threads=1, sample=0, progress=False))
    n_words = size // (len(words[0].encode()) + 1)
    # the int32 id array (4 bytes per word) is the corpus representation; the text itself is never held
    assert model.training_stats["raw_words"] == pytest.approx(n_words, rel=0.01)
    assert growth < 0.75 * size, f"train_word2vec: peak memory grew by {growth >> 20} MiB for a {size >> 20} MiB line"

    with pytest.raises(ValueError, match=r"line 1 is longer than 8 MiB.*break the text into lines"):
        train_transformer("clm", [path], output_dir=tmp_path / "lm", progress=False)
    assert not (tmp_path / "lm").exists()


# ------------------------------------------------------------------------------------- model inputs


def _family_model(family, **fields):
    if family == "encoder":
        return EncoderModel(EncoderConfig(**SIZES, num_hidden_layers=2, **fields)).eval()
    if family == "decoder":
        return DecoderForCausalLM(DecoderConfig(**SIZES, num_hidden_layers=2, **fields)).eval()
    return Seq2SeqForConditionalGeneration(Seq2SeqConfig(**SIZES, encoder_layers=2, decoder_layers=2, **fields)).eval()


def _forward(model, ids, mask=None):
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if isinstance(model, Seq2SeqForConditionalGeneration):
        kwargs["decoder_input_ids"] = ids
    with torch.no_grad():
        return model(**kwargs)[0]


@pytest.mark.parametrize("family", ["encoder", "decoder", "seq2seq"])
def test_token_ids_out_of_range_and_over_long_learned_positions(family):
    model = _family_model(family, position_embedding_type="learned", max_position_embeddings=16)
    for bad in (VOCAB, -1):
        ids = torch.tensor([[5, 6, bad, 7]])
        with pytest.raises(ValueError, match=rf"token id {bad}, outside the vocabulary of size {VOCAB}.*tokenizer"):
            _forward(model, ids)
    with pytest.raises(ValueError, match=r"(length|position) (40|39).*max_position_embeddings=16"):
        _forward(model, torch.randint(5, VOCAB, (1, 40)))


def test_word2vec_ids_out_of_range():
    model = Word2VecModel(Word2VecConfig(vocab_size=20, vector_size=8, min_count=0), token_counts=torch.arange(20))
    good = dict(center_ids=torch.tensor([1, 2]), context_ids=torch.tensor([3, 4]),
                negative_ids=torch.tensor([[5] * 5] * 2))
    assert torch.isfinite(model(**good).loss)
    for name, bad in (("center_ids", 20), ("context_ids", -1), ("negative_ids", 30)):
        batch = dict(good)
        batch[name] = batch[name].clone()
        batch[name].view(-1)[-1] = bad
        with pytest.raises(ValueError, match=rf"{name} contains id {bad}, outside the vocabulary of size 20"):
            model(**batch)


@pytest.mark.parametrize("family", ["encoder", "decoder", "seq2seq"])
def test_half_precision_fully_masked_rows_give_no_nan(family):
    """float16 and bfloat16, eager and sdpa, post- and pre-norm: a row whose attention mask is all zeros (and a
    left-padded one) gives finite outputs, and the unmasked rows match the float32 model."""
    ids = torch.randint(5, VOCAB, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1] = 0  # fully masked
    mask[2, :3] = 0  # left padding
    for norm in ("post", "pre"):
        torch.manual_seed(0)
        reference = _family_model(family, norm_position=norm)
        expected = _forward(reference, ids, mask)
        for dtype in (torch.float16, torch.bfloat16):
            for impl in ("eager", "sdpa"):
                model = _family_model(family, norm_position=norm)
                model.load_state_dict(reference.state_dict())
                model = model.to(dtype)
                model.set_attn_implementation(impl)
                out = _forward(model, ids, mask)
                assert out.dtype == dtype
                assert torch.isfinite(out).all(), f"{family} {norm} {dtype} {impl}: non-finite output"
                # row 0 is unpadded: the half-precision model computes the same thing
                scale = expected[0].abs().max().item()
                diff = (out[0].float() - expected[0]).abs().max().item()
                assert diff < 0.05 * max(scale, 1.0), f"{family} {norm} {dtype} {impl}: diff {diff:.3g}"


@pytest.mark.parametrize("family", ["encoder", "decoder", "seq2seq"])
@pytest.mark.parametrize("positions", ["sinusoidal", "rotary"])
def test_inputs_far_beyond_max_position_embeddings(family, positions):
    """Sinusoidal and rotary positions are computed per call: a 2,048-token input runs on a model whose
    max_position_embeddings is 64, gives finite outputs, and a causal model's first 64 outputs equal those
    of the 64-token prefix (positions are exact far out, not wrapped or clipped)."""
    torch.manual_seed(0)
    model = _family_model(family, position_embedding_type=positions, max_position_embeddings=64)
    ids = torch.randint(5, VOCAB, (1, 2048), generator=torch.Generator().manual_seed(1))
    out = _forward(model, ids)
    assert out.shape[:2] == (1, 2048) and torch.isfinite(out).all()
    if family == "decoder":
        torch.testing.assert_close(out[:, :64], _forward(model, ids[:, :64]), atol=1e-4, rtol=1e-4)
    elif family == "seq2seq":  # decoder side is causal; the encoder sees the full input in both runs
        with torch.no_grad():
            enc = model.get_encoder()(input_ids=ids)
            full = model(encoder_outputs=enc, decoder_input_ids=ids).logits
            prefix = model(encoder_outputs=enc, decoder_input_ids=ids[:, :64]).logits
        torch.testing.assert_close(full[:, :64], prefix, atol=1e-4, rtol=1e-4)
    elif positions == "rotary":  # rotary attention sees relative positions only: shifting them all changes nothing
        with torch.no_grad():
            shifted = model(input_ids=ids, position_ids=torch.arange(2048)[None] + 3000)[0]
        torch.testing.assert_close(shifted, out, atol=1e-3, rtol=1e-3)
    else:  # sinusoids added to the embeddings: the same token at positions 0 and > 64 gets different outputs
        same_token = (ids[0] == ids[0, 0]).nonzero().flatten()
        far = same_token[same_token > 64]
        assert far.numel() and not torch.allclose(out[0, 0], out[0, far[0]], atol=1e-3)


# ------------------------------------------------------------------------------------------- properties
# tests/test_convert_vectors.py holds the word2vec binary/text round trip, gensim parity and arbitrary-bytes
# properties, tests/test_tokenization.py the byte-level BPE decode(encode(x)) == x one; these cover the
# remaining writers: GloVe text and w2vformer checkpoint folders.
_WORD = st.text(st.characters(blacklist_categories=("Cs",)).filter(lambda c: not c.isspace()), min_size=1,
                max_size=8).filter(lambda w: w not in ("[PAD]", "[UNK]"))


@st.composite
def _vocab_and_vectors(draw):
    words = draw(st.lists(_WORD, min_size=1, max_size=8, unique=True))
    dim = draw(st.integers(1, 5))
    values = draw(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=len(words) * dim,
                           max_size=len(words) * dim))
    return words, np.array(values, dtype=np.float32).reshape(len(words), dim)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_vocab_and_vectors(), fmt=st.sampled_from(["glove", "w2vformer"]))
def test_property_glove_and_checkpoint_round_trip_exactly(tmp_path_factory, data, fmt):
    words, vectors = data
    path = tmp_path_factory.mktemp("rt") / ("vectors.txt" if fmt == "glove" else "checkpoint")
    write_vectors(path, words, vectors, format=fmt, progress=False)
    got_words, got = read_vectors(path, format=fmt, progress=False)
    assert list(got_words) == words
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), vectors.view(np.uint32))  # -0.0 too
