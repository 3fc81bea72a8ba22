"""Pictures: attention maps for each family, word vectors, loss curves; CJK labels render as characters."""

import json
import warnings

import matplotlib.image
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from w2vformer.cli import main
from w2vformer.plotting import cjk_font_path, plot_attention, plot_embeddings, plot_loss_curves

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "春", "眠", "不", "觉", "晓", "山", "月"]


def _tokenizer(kind):
    special = {"encoder": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "decoder": ["[PAD]", "[UNK]", "<s>", "</s>"],
               "seq2seq": ["[PAD]", "[UNK]", "<s>", "</s>", "[MASK]"]}[kind]
    vocab = {w: i for i, w in enumerate(special + WORDS)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Split("", "isolated")])
    if kind == "encoder":
        t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        names = dict(cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    else:
        names = dict(bos_token="<s>", eos_token="</s>")
    return PreTrainedTokenizerFast(tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]", **names)


def _save_family(kind, folder):
    from w2vformer.training.lm import build_model_for_task

    task = {"encoder": "mlm", "decoder": "clm", "seq2seq": "seq2seq"}[kind]
    tok = _tokenizer(kind)
    depth = {"encoder_layers": 2, "decoder_layers": 1} if kind == "seq2seq" else {"num_hidden_layers": 2}
    torch.manual_seed(0)
    model = build_model_for_task(task, tok, dict(hidden_size=12, num_attention_heads=3, intermediate_size=17, **depth))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind,expected", [
    ("decoder", ["attention_overview.png", "attention_self_attention_layer0.png", "attention_self_attention_layer1.png"]),
    ("encoder", ["attention_overview.png", "attention_self_attention_layer0.png", "attention_self_attention_layer1.png"]),
    ("seq2seq", ["attention_overview.png", "attention_cross_attention_layer0.png",
                 "attention_decoder_self_attention_layer0.png", "attention_encoder_self_attention_layer0.png",
                 "attention_encoder_self_attention_layer1.png"]),
])
def test_attention_maps_for_each_family(tmp_path, kind, expected):
    folder = _save_family(kind, tmp_path / kind)
    paths = plot_attention(folder, "the cat sat on the mat", tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted(expected)
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 150
        assert image[..., :3].std() > 0.05  # not a blank canvas
    assert not list((tmp_path / "plots").glob(".*")), "temporary files left behind"


def test_chinese_tokens_render_as_characters(tmp_path, recwarn):
    from fontTools.ttLib import TTFont

    cmap = TTFont(cjk_font_path()).getBestCmap()
    assert all(ord(c) in cmap for c in "春眠不觉晓山月"), f"{cjk_font_path()} lacks the test characters"
    folder = _save_family("decoder", tmp_path / "zh")
    warnings.simplefilter("always")
    plot_attention(folder, "春眠不觉晓", tmp_path / "plots")
    missing = [str(w.message) for w in recwarn if "missing from" in str(w.message)]
    assert not missing, missing  # matplotlib warns "Glyph ... missing from font(s)" for every empty box


def test_long_inputs_are_truncated_and_stay_legible(tmp_path):
    from w2vformer.plotting import attention_maps

    folder = _save_family("encoder", tmp_path / "enc")
    text = " ".join(["the cat sat on the mat"] * 30)
    maps, labels = attention_maps(folder, text, max_tokens=24)
    assert maps["self-attention"].shape == (2, 3, 24, 24) and len(labels["self-attention"][0]) == 24
    np.testing.assert_allclose(maps["self-attention"].sum(-1), 1.0, atol=1e-5)  # rows of A' are distributions
    paths = plot_attention(folder, text, tmp_path / "plots", max_tokens=24)
    image = matplotlib.image.imread(paths[1])
    assert image.shape[0] < 3000 and image.shape[1] < 6000  # bounded size with 24 tokens per axis


def test_embeddings_plot_for_word2vec_and_transformer(tmp_path):
    from w2vformer.keyedvectors import WordVectors

    rng = np.random.default_rng(0)
    wv = WordVectors(WORDS, rng.standard_normal((len(WORDS), 6)).astype(np.float32))
    out = plot_embeddings(wv, ["cat", "dog", "mat", "山", "月"], tmp_path / "w.png")
    assert matplotlib.image.imread(out).shape[2] in (3, 4)
    folder = _save_family("decoder", tmp_path / "dec")
    assert main(["plot", "embeddings", str(folder), "--words", "cat", "dog", "mat", "-o", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").stat().st_size > 5000
    with pytest.raises(KeyError, match="zebra"):
        plot_embeddings(wv, ["cat", "dog", "zebra"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least 3 words"):
        plot_embeddings(wv, ["cat"], tmp_path / "x.png")


def test_loss_curves_and_bad_inputs(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    log = [{"step": s, "loss": 5.0 / s} for s in range(1, 11)] + [{"step": 10, "eval_loss": 0.9},
                                                                  {"step": 10, "eval_loss": 0.9}]
    (run / "training_log.json").write_text(json.dumps(log))
    assert main(["plot", "loss", str(run), "-o", str(tmp_path / "loss.png")]) == 0
    assert matplotlib.image.imread(tmp_path / "loss.png").std() > 0.05
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "training_log.json").write_text("[]")
    with pytest.raises(ValueError, match="no loss entries"):
        plot_loss_curves([tmp_path / "empty"], tmp_path / "x.png")
    assert main(["plot", "attention", str(tmp_path / "nope"), "hi"]) == 2
    assert "config.json missing" in capsys.readouterr().err
