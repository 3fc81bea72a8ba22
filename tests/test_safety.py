"""Safety: weights load from safetensors only, nothing unpickles a user file, and the files shipped to the Hub
run no network, subprocess or eval code.

The shipped files of every family (what ``save_pretrained`` copies for ``trust_remote_code`` users) are
checked in tests/test_hub.py (``test_save_writes_remote_code_and_full_auto_map`` with
``check_remote_code_is_safe``); here the same check runs on the whole ``modeling/`` source folder, so a file
that no family ships yet is covered too.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

import w2vformer
from test_hub import check_remote_code_is_safe
from w2vformer import WordVectors, convert_to_transformers, init_embeddings_from_word2vec, read_vectors
from w2vformer.conversion.vectors import build_wordlevel_tokenizer, vectors_to_checkpoint
from w2vformer.conversion.word2vec_format import write_word2vec

PACKAGE = Path(w2vformer.__file__).resolve().parent.parent
SOURCES = [p for folder in ("modeling", "tokenization", "conversion", "training", "w2vformer")
           for p in sorted((PACKAGE / folder).rglob("*.py"))]
UNPICKLING_MODULES = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_package_never_unpickles():
    """AST scan: no pickle-family import; ``torch.load`` only with ``weights_only=True``; ``np.load`` never with
    ``allow_pickle=True``; no ``use_safetensors=False``; ``yaml.load`` never (``safe_load`` only)."""
    assert len(SOURCES) > 20
    problems = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = lambda node: f"{path.relative_to(PACKAGE)}:{node.lineno}"  # noqa: E731
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{where(node)} imports {n}" for n in names if n.split(".")[0] in UNPICKLING_MODULES]
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            attr = node.func.attr
            if (owner, attr) == ("torch", "load"):
                flag = _keyword(node, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where(node)} torch.load without weights_only=True")
            if (owner, attr) in (("np", "load"), ("numpy", "load")):
                flag = _keyword(node, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where(node)} np.load with allow_pickle")
            if (owner, attr) == ("yaml", "load"):
                problems.append(f"{where(node)} yaml.load (use yaml.safe_load)")
            flag = _keyword(node, "use_safetensors")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where(node)} use_safetensors is not True")
    assert not problems, "\n".join(problems)


class _Payload:
    """Unpickling this runs ``os.system``: any loader that unpickles the file creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture()
def booby_trapped(tmp_path):
    """A Word2Vec checkpoint folder whose weights are a pickle that runs a command when loaded."""
    words = [f"w{i}" for i in range(6)]
    write_word2vec(tmp_path / "v.bin", words, np.ones((6, 4), np.float32), progress=False)
    folder = tmp_path / "trap"
    vectors_to_checkpoint(tmp_path / "v.bin", folder, progress=False)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    torch.save({"in_embed.weight": _Payload(marker), "out_embed.weight": torch.zeros(8, 4)},
               folder / "pytorch_model.bin")
    return folder, marker


def test_no_loader_unpickles_a_weights_file(booby_trapped, tmp_path):
    """Our loaders ask for safetensors only (a folder with just ``pytorch_model.bin`` is refused with a message
    naming safetensors); transformers' own ``from_pretrained`` reads ``.bin`` with ``weights_only=True``, which
    refuses the payload. In every case the payload never runs."""
    folder, marker = booby_trapped
    encoder = tmp_path / "encoder"
    w2vformer.EncoderModel(_encoder_config(10)).save_pretrained(encoder)
    (encoder / "model.safetensors").unlink()
    os.link(folder / "pytorch_model.bin", encoder / "pytorch_model.bin")
    tokenizer = build_wordlevel_tokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)])
    ours = {  # name -> (attempt, what the message must say)
        "WordVectors.from_pretrained": (lambda: WordVectors.from_pretrained(folder), r"no model\.safetensors"),
        "read_vectors": (lambda: read_vectors(folder), r"no file named model\.safetensors"),
        "init_embeddings_from_word2vec": (lambda: init_embeddings_from_word2vec(
            w2vformer.EncoderForMaskedLM(_encoder_config(10)), tokenizer, folder), r"no file named model\.safetensors"),
        "convert_to_transformers": (lambda: convert_to_transformers(encoder, tmp_path / "stock"),
                                    r"no \.safetensors weights \(found \['pytorch_model\.bin'\]\); we never unpickle"),
    }
    for name, (attempt, pattern) in ours.items():
        with pytest.raises((OSError, ValueError), match=pattern):
            attempt()
        assert not marker.exists(), f"{name} unpickled the weights file and ran its payload"
    with pytest.raises(Exception, match="Weights only load failed"):
        AutoModel.from_pretrained(folder)  # transformers' torch.load(weights_only=True)
    assert not marker.exists()
    assert not (tmp_path / "stock").exists()
    # the payload is real: unpickling the same kind of file does run it
    proof = tmp_path / "proof"
    torch.save({"x": _Payload(proof)}, tmp_path / "proof.bin")
    torch.load(tmp_path / "proof.bin", weights_only=False)
    assert proof.exists()


def test_safetensors_win_over_a_pickle_beside_them(booby_trapped):
    """With both files present the safetensors are read and the pickle is never touched."""
    folder, marker = booby_trapped
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    config = json.loads((folder / "config.json").read_text())
    fields = {k: v for k, v in config.items() if k in ("vocab_size", "vector_size", "min_count", "loss")}
    counts = torch.ones(config["vocab_size"], dtype=torch.long)
    model = Word2VecModel(w2vformer.Word2VecConfig(**fields), token_counts=counts)
    model.save_pretrained(folder.parent / "both")
    os.replace(folder / "pytorch_model.bin", folder.parent / "both" / "pytorch_model.bin")
    loaded = AutoModel.from_pretrained(folder.parent / "both")
    assert torch.equal(loaded.in_embed.weight, model.in_embed.weight)
    assert not marker.exists()


def _encoder_config(vocab_size):
    return w2vformer.EncoderConfig(vocab_size=vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=16)


def test_modeling_sources_are_safe_to_ship():
    """The Hub check of tests/test_hub.py, run on every file of modeling/ (shipped or not yet)."""
    check_remote_code_is_safe(PACKAGE / "modeling")
