"""train_transformer and the `w2vformer train` / `generate` commands: every task, resume, Word2Vec init,
the saved run folder, and bad input."""

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

import w2vformer  # noqa: F401  (registers the model types)
from w2vformer.cli import main
from w2vformer.training.lm import read_text_examples, train_transformer

TINY = dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, num_hidden_layers=1, dropout=0.0)
TINY_S2S = dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, encoder_layers=1, decoder_layers=1,
                dropout=0.0)
SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog ran home",
             "the bird sang in the tree", "a small bird sat on a branch", "the old dog slept"] * 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    (d / "pairs.tsv").write_text("\n".join(f"{s}\t{' '.join(reversed(s.split()))}" for s in SENTENCES) + "\n")
    (d / "labels.tsv").write_text("\n".join(f"{'dog' if 'dog' in s else 'other'}\t{s}" for s in SENTENCES) + "\n")
    return d


def _kw(**extra):
    return dict(block_size=8, max_steps=3, batch_size=4, logging_steps=1, save_steps=2, progress=False,
                vocab_size=300, **extra)


@pytest.mark.parametrize("task,file,config,auto", [
    ("clm", "text.txt", TINY, AutoModelForCausalLM),
    ("mlm", "text.txt", TINY, AutoModelForMaskedLM),
    ("seq2seq", "pairs.tsv", TINY_S2S, AutoModelForSeq2SeqLM),
])
def test_each_language_model_task_trains_saves_and_reloads(corpus, tmp_path, task, file, config, auto):
    result = train_transformer(task, [corpus / file], output_dir=tmp_path / task, model_config=config, **_kw())
    assert result.metrics["steps"] == 3 and np.isfinite(result.metrics["train_loss"])
    assert "eval_loss" in result.metrics and result.metrics["perplexity"] > 1
    out = tmp_path / task
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training_log.json", "run_info.json",
                 "README.md"):
        assert (out / name).is_file(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging folder left behind"
    info = json.loads((out / "run_info.json").read_text())
    assert info["task"] == task and info["embeddings_init"] == "random"
    reloaded = auto.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(["the cat sat"], return_tensors="pt")
    batch.pop("token_type_ids", None)
    if task == "seq2seq":
        batch["decoder_input_ids"] = torch.tensor([[tok.bos_token_id, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, result.model(**batch).logits, atol=1e-5, rtol=0)


def test_classify_reports_accuracy_and_labels(corpus, tmp_path):
    result = train_transformer("classify", [corpus / "labels.tsv"], output_dir=tmp_path / "cls",
                               model_config=TINY, **_kw())
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert set(result.model.config.id2label.values()) == {"dog", "other"}


def test_resume_continues_from_the_last_checkpoint(corpus, tmp_path):
    out = tmp_path / "run"
    train_transformer("clm", [corpus / "text.txt"], output_dir=out, model_config=TINY, **_kw())
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]
    # plant a marker in the last checkpoint's state: only a run that truly resumes from it carries it on
    state_file = out / "checkpoints" / "checkpoint-3" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"].append({"step": 3, "resume_marker": 1})
    state_file.write_text(json.dumps(state))
    kw = _kw()
    kw["max_steps"] = 5
    resumed = train_transformer("clm", [corpus / "text.txt"], output_dir=out, model_config=TINY,
                                tokenizer=out, resume=True, **kw)
    assert resumed.metrics["steps"] == 5
    assert any("resume_marker" in h for h in resumed.log_history), "the run did not resume from checkpoint-3"
    assert [h["step"] for h in resumed.log_history if "loss" in h][-2:] == [4, 5]


def test_init_from_word2vec_vectors_and_freeze(corpus, tmp_path):
    from w2vformer.conversion.vectors import write_vectors

    words = sorted({w for s in SENTENCES for w in s.split()})
    rng = np.random.default_rng(0)
    vec_file = tmp_path / "vectors.txt"
    write_vectors(vec_file, words, rng.standard_normal((len(words), 16)).astype(np.float32), format="word2vec-txt",
                  progress=False)
    result = train_transformer("clm", [corpus / "text.txt"], output_dir=tmp_path / "init", model_config=TINY,
                               init_from_word2vec=vec_file, freeze_embeddings_steps=2, **_kw())
    report = result.init_report
    assert report.string >= len(words) - 2 and report.output_head == "tied"
    info = json.loads((tmp_path / "init" / "run_info.json").read_text())
    assert info["embeddings_init"]["string"] == report.string
    assert "initialised from vector file" in (tmp_path / "init" / "README.md").read_text()


def test_gzip_files_are_read_like_plain_ones(corpus, tmp_path):
    import gzip

    packed = tmp_path / "pairs.tsv.gz"
    packed.write_bytes(gzip.compress((corpus / "pairs.tsv").read_bytes()))
    assert read_text_examples("seq2seq", [packed]) == read_text_examples("seq2seq", [corpus / "pairs.tsv"])


def test_datasets_datasets_are_read_by_column_name(tmp_path):
    import datasets  # an optional input of train_transformer; the test extra installs it

    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"text": ["the cat sat", " ", "a dog ran"]}).save_to_disk(folder)
    assert read_text_examples("clm", [folder]) == ["the cat sat", "a dog ran"]
    labels = datasets.ClassLabel(names=["neg", "pos"])
    pairs = datasets.Dataset.from_dict({"sentence": ["bad", "good"], "label": [0, 1]},
                                       features=datasets.Features({"sentence": datasets.Value("string"),
                                                                   "label": labels}))
    pairs.save_to_disk(tmp_path / "cls")
    assert read_text_examples("classify", [tmp_path / "cls"]) == [("neg", "bad"), ("pos", "good")]
    with pytest.raises(ValueError, match=r"needs one of \['source', 'src', 'input'\]"):
        read_text_examples("seq2seq", [folder])
    with pytest.raises(FileNotFoundError, match="neither a text file nor a datasets dataset"):
        read_text_examples("clm", ["no-such-user/no-such-dataset"])


def test_bad_inputs_are_clear(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown task 'gan'"):
        train_transformer("gan", [corpus / "text.txt"], output_dir=tmp_path / "x")
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one field here\n")
    with pytest.raises(ValueError, match=r"line 1 is not 'source<TAB>target'"):
        read_text_examples("seq2seq", [bad])
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text: undecodable byte at offset 3"):
        read_text_examples("clm", [latin])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_text_examples("clm", [tmp_path / "missing.txt"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_transformer("clm", [corpus / "text.txt"], output_dir=tmp_path / "fresh", model_config=TINY,
                          resume=True, **_kw())
    assert not (tmp_path / "fresh" / "config.json").exists()


def test_cli_train_and_generate(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    code = main(["train", "clm", str(corpus / "text.txt"), "--output", str(out), "--hidden-size", "16",
                 "--layers", "1", "--heads", "2", "--block-size", "8", "--max-steps", "2", "--batch-size", "4",
                 "--vocab-size", "300", "--config", '{"dropout": 0.0}'])
    assert code == 0 and (out / "model.safetensors").is_file()
    assert "saved DecoderForCausalLM" in capsys.readouterr().out
    from w2vformer.modeling.modeling_decoder import DecoderForCausalLM

    layouts = []
    original = DecoderForCausalLM.set_weight_layout
    monkeypatch.setattr(DecoderForCausalLM, "set_weight_layout",
                        lambda self, layout: layouts.append(layout) or original(self, layout))
    assert main(["generate", str(out), "the cat", "--max-new-tokens", "3"]) == 0
    assert layouts == ["in_out"], "the CLI did not decode with the inference options"
    fast = capsys.readouterr().out
    assert fast.startswith("the cat => ")
    assert main(["generate", str(out), "the cat", "--max-new-tokens", "3", "--plain-layout"]) == 0
    assert capsys.readouterr().out == fast  # the inference options change the speed, not the text
    assert layouts == ["in_out"], "--plain-layout still changed the layout"
    # a bfloat16 checkpoint loads as bfloat16 and is fused, but keeps nn.Linear's layout: on CPU, (in, out)
    # weights made bfloat16 products several times slower
    half = tmp_path / "cli-bf16"
    shutil.copytree(out, half)
    DecoderForCausalLM.from_pretrained(out).to(torch.bfloat16).save_pretrained(half)
    fused = []
    original_fuse = DecoderForCausalLM.fuse_qkv_projections
    monkeypatch.setattr(DecoderForCausalLM, "fuse_qkv_projections",
                        lambda self: fused.append(self.dtype) or original_fuse(self))
    assert main(["generate", str(half), "the cat", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.startswith("the cat => ")
    assert fused == [torch.bfloat16] and layouts == ["in_out"], "a bfloat16 model was given the in_out layout"
    # bad input: one line on stderr, exit code 2, no traceback
    assert main(["train", "clm", str(corpus / "text.txt"), "--output", str(tmp_path / "y"), "--config", "{oops"]) == 2
    assert "--config is not valid JSON" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nothing"), "hi"]) == 2
    assert "config.json missing" in capsys.readouterr().err


@pytest.mark.parametrize("task,file", [("mlm", "text.txt"), ("seq2seq", "pairs.tsv"), ("classify", "labels.tsv")])
def test_cli_train_other_tasks_and_plot_attention(corpus, tmp_path, task, file):
    out = tmp_path / task
    assert main(["train", task, str(corpus / file), "--output", str(out), "--hidden-size", "16", "--layers", "1",
                 "--heads", "2", "--block-size", "8", "--max-steps", "2", "--batch-size", "4",
                 "--vocab-size", "300"]) == 0
    assert (out / "model.safetensors").is_file() and (out / "training_log.json").is_file()
    if task != "classify":
        assert main(["plot", "attention", str(out), "the cat sat", "-o", str(tmp_path / "plots")]) == 0
        assert (tmp_path / "plots" / "attention_overview.png").stat().st_size > 5000


def test_cli_quickstart_bad_input(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["quickstart", "--lang", "fr"])
    assert exit_info.value.code == 2 and "invalid choice: 'fr'" in capsys.readouterr().err
