"""``w2vformer convert``: vectors between formats, and stock BERT / GPT-2 / BART folders through our models and back.

The round trips start from tiny random stock models saved with transformers; after from-transformers our model
must compute the stock model's logits, and after to-transformers the stock weights must be bit-identical.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers

from common import HIDDEN, INTERMEDIATE, VOCAB, ids_tensor
from w2vformer.cli import main
from w2vformer.conversion.vectors import read_vectors
from w2vformer.conversion.word2vec_format import write_word2vec


def stock_model(family: str):
    torch.manual_seed(0)
    if family == "bert":
        config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=INTERMEDIATE,
                                         max_position_embeddings=64, pad_token_id=0)
        return transformers.BertForMaskedLM(config)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=64,
                                         bos_token_id=2, eos_token_id=3, pad_token_id=0)
        return transformers.GPT2LMHeadModel(config)
    config = transformers.BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=INTERMEDIATE,
                                     decoder_ffn_dim=INTERMEDIATE, max_position_embeddings=64, pad_token_id=0,
                                     bos_token_id=2, eos_token_id=3, decoder_start_token_id=2, forced_eos_token_id=None)
    return transformers.BartForConditionalGeneration(config)


def save_tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "<s>", "</s>"] + [f"t{i}" for i in range(VOCAB - 4)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>",
                                         eos_token="</s>").save_pretrained(folder)


def run_cli(capsys, *argv):
    code = main(["convert", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def logits(model, family, ids):
    with torch.no_grad():
        if family == "bart":
            return model.eval()(input_ids=ids, decoder_input_ids=ids.flip(-1)).logits
        return model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("family", ["bert", "gpt2", "bart"])
def test_cli_round_trip_through_our_model(tmp_path, capsys, family):
    stock = stock_model(family)
    stock.save_pretrained(tmp_path / "stock")
    save_tokenizer(tmp_path / "stock")

    code, out, err = run_cli(capsys, "from-transformers", tmp_path / "stock", tmp_path / "ours")
    assert code == 0, err
    assert "files carried over: tokenizer.json, tokenizer_config.json" in out
    our_config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert our_config["model_type"] == {"bert": "w2vformer_encoder", "gpt2": "w2vformer_decoder",
                                        "bart": "w2vformer_seq2seq"}[family]
    ours = transformers.AutoConfig.from_pretrained(tmp_path / "ours")  # registered by `import w2vformer`
    model_cls = {"bert": transformers.AutoModelForMaskedLM, "gpt2": transformers.AutoModelForCausalLM,
                 "bart": transformers.AutoModelForSeq2SeqLM}[family]
    ours = model_cls.from_pretrained(tmp_path / "ours")
    ids = ids_tensor((3, 7), seed=1)
    torch.testing.assert_close(logits(ours, family, ids), logits(stock, family, ids), atol=1e-5, rtol=0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "ours")
    assert tokenizer("t5 t6")["input_ids"] == [9, 10]

    # the input embeddings of any of our checkpoints export as word vectors (special tokens left out)
    code, out, err = run_cli(capsys, "vectors", tmp_path / "ours", tmp_path / "embeddings.txt")
    assert code == 0, err
    words, vectors = read_vectors(tmp_path / "embeddings.txt")
    assert words == [f"t{i}" for i in range(VOCAB - 4)]
    assert np.array_equal(vectors, stock.get_input_embeddings().weight.detach().numpy()[4:])

    code, out, err = run_cli(capsys, "to-transformers", tmp_path / "ours", tmp_path / "back")
    assert code == 0, err
    back = type(stock).from_pretrained(tmp_path / "back")
    expected, got = stock.state_dict(), back.state_dict()
    assert sorted(expected) == sorted(got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "back" / name).read_bytes() == (tmp_path / "stock" / name).read_bytes()
    if family != "bert":
        assert (tmp_path / "back" / "generation_config.json").read_bytes() == \
            (tmp_path / "stock" / "generation_config.json").read_bytes()


def make_folder(tmp_path, name, config: dict | None, files=()):
    folder = tmp_path / name
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    for f in files:
        (folder / f).write_bytes(b"\0")
    return folder


@pytest.mark.parametrize("command, config, files, message", [
    ("from-transformers", {"model_type": "llama"}, ["model.safetensors"],
     "cannot convert model_type 'llama' from transformers; supported source architectures: bert, gpt2, bart"),
    ("from-transformers", {"model_type": "w2vformer_encoder"}, ["model.safetensors"], "already a w2vformer checkpoint"),
    ("from-transformers", {"model_type": "bert"}, ["pytorch_model.bin"], "never unpickle"),
    ("from-transformers", None, [], "has no config.json"),
    ("from-transformers", {"architectures": ["BertModel"]}, [], "has no 'model_type'"),
    ("to-transformers", {"model_type": "bert"}, ["model.safetensors"],
     "supported: w2vformer_encoder .-> bert., w2vformer_decoder .-> gpt2., w2vformer_seq2seq .-> bart."),
    ("to-transformers", {"model_type": "w2vformer_word2vec"}, ["model.safetensors"], "export its vectors instead"),
])
def test_dispatcher_errors_are_one_clear_line(tmp_path, capsys, command, config, files, message):
    import re

    src = make_folder(tmp_path, "src", config, files)
    code, out, err = run_cli(capsys, command, src, tmp_path / "out")
    assert code == 2
    assert re.search(message, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["src"]  # no output, no temporary folder


def test_cli_vectors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(9)]
    vectors = rng.standard_normal((9, 5)).astype(np.float32)
    write_word2vec(tmp_path / "v.bin", words, vectors)

    code, out, err = run_cli(capsys, "vectors", tmp_path / "v.bin", tmp_path / "glove.txt", "--limit", 4)
    assert code == 0, err
    assert "(word2vec-bin)" in out and "(glove)" in out
    got_words, got = read_vectors(tmp_path / "glove.txt")
    assert got_words == words[:4] and np.array_equal(got, vectors[:4])

    code, out, err = run_cli(capsys, "vectors", tmp_path / "glove.txt", tmp_path / "ckpt", "--from", "glove",
                             "--to", "w2vformer", "--fp16")
    assert code == 0, err
    model = transformers.AutoModel.from_pretrained(tmp_path / "ckpt")
    assert model.in_embed.weight.dtype == torch.float16
    assert torch.equal(model.in_embed.weight[2:], torch.from_numpy(vectors[:4]).half())

    code, out, err = run_cli(capsys, "vectors", tmp_path / "ckpt", tmp_path / "back.vec")
    assert code == 0, err
    got_words, got = read_vectors(tmp_path / "back.vec")
    assert got_words == words[:4] and np.array_equal(got, vectors[:4].astype(np.float16).astype(np.float32))
    code, out, err = run_cli(capsys, "vectors", tmp_path / "ckpt", tmp_path / "all.vec", "--special-tokens")
    assert code == 0, err
    assert read_vectors(tmp_path / "all.vec")[0] == ["[PAD]", "[UNK]"] + words[:4]

    (tmp_path / "bad.txt").write_bytes(b"2 5\nw0 1 2 3 4 5\nw1 1.000 2.000 3.000\n")
    code, out, err = run_cli(capsys, "vectors", tmp_path / "bad.txt", tmp_path / "never.bin")
    assert code == 2 and "line 3 (row 1): 3 values after the word 'w1', expected 5" in err
    assert not (tmp_path / "never.bin").exists()
    code, out, err = run_cli(capsys, "vectors", tmp_path / "v.bin", tmp_path / "x.bin", "--to", "parquet")
    assert code == 2 and "unknown vector format 'parquet'" in err


def test_to_transformers_refuses_options_the_stock_class_lacks(tmp_path, capsys):
    from w2vformer.modeling.configuration_encoder import EncoderConfig
    from w2vformer.modeling.modeling_encoder import EncoderForMaskedLM

    config = EncoderConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=INTERMEDIATE, max_position_embeddings=64, position_embedding_type="rotary")
    EncoderForMaskedLM(config).save_pretrained(tmp_path / "rotary")
    code, out, err = run_cli(capsys, "to-transformers", tmp_path / "rotary", tmp_path / "bert")
    assert code == 2 and "rotary" in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["rotary"]
