"""Checkpoint folders in and out of stock transformers: dispatch on ``config.json``'s ``model_type``.

    convert_from_transformers("bert-tiny/", "ours/")      # stock BERT / GPT-2 / BART folder -> ours
    convert_to_transformers("ours/", "stock/")            # and back

Each direction loads the model with the class named in ``config.json``'s ``architectures`` (or the family's
usual LM class), from safetensors only, converts it with the family's module (``conversion/bert.py``,
``gpt2.py``, ``bart.py``), saves it, copies the tokenizer files and ``generation_config.json`` over, reloads
the result and checks it computes what the source computes on a few token ids. The output folder appears
only when all of that succeeded (``atomic_dir``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from w2vformer._io import atomic_dir

__all__ = ["FAMILIES", "convert_from_transformers", "convert_to_transformers", "read_model_type"]

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "chat_template.jinja",
)
CARRIED_FILES = TOKENIZER_FILES + ("generation_config.json",)


@dataclass(frozen=True)
class Family:
    """One stock architecture and the w2vformer family it converts to."""

    stock_model_type: str
    our_model_type: str
    conversion_module: str  # module in w2vformer.conversion with from_stock / to_stock
    modeling_module: str  # our module in w2vformer.modeling
    classes: dict  # stock class name -> our class name
    default_stock: str  # class used when config.json names none of ``classes``
    is_seq2seq: bool = False

    @property
    def default_ours(self) -> str:
        return self.classes[self.default_stock]


FAMILIES = {
    "bert": Family("bert", "w2vformer_encoder", "bert", "modeling_encoder", {
        "BertModel": "EncoderModel", "BertForMaskedLM": "EncoderForMaskedLM",
        "BertForSequenceClassification": "EncoderForSequenceClassification",
        "BertForTokenClassification": "EncoderForTokenClassification",
    }, "BertForMaskedLM"),
    "gpt2": Family("gpt2", "w2vformer_decoder", "gpt2", "modeling_decoder", {
        "GPT2Model": "DecoderModel", "GPT2LMHeadModel": "DecoderForCausalLM",
    }, "GPT2LMHeadModel"),
    "bart": Family("bart", "w2vformer_seq2seq", "bart", "modeling_seq2seq", {
        "BartModel": "Seq2SeqModel", "BartForConditionalGeneration": "Seq2SeqForConditionalGeneration",
    }, "BartForConditionalGeneration", is_seq2seq=True),
}
_BY_OURS = {f.our_model_type: f for f in FAMILIES.values()}


def read_model_type(src_dir: str | os.PathLike) -> tuple[str, list[str]]:
    """``(model_type, architectures)`` from a checkpoint folder's ``config.json``."""
    src = Path(src_dir)
    if not src.is_dir():
        raise NotADirectoryError(f"{str(src)!r} is not a folder; pass a checkpoint folder (config.json + weights)")
    path = src / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(src)!r} has no config.json; pass a checkpoint folder saved with save_pretrained")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON ({e}); repair or re-save the checkpoint") from None
    model_type = config.get("model_type")
    if not model_type:
        raise ValueError(f"{str(path)!r} has no 'model_type'; re-save the checkpoint with save_pretrained")
    return model_type, list(config.get("architectures") or [])


def _require_safetensors(src: Path) -> None:
    if not any(src.glob("*.safetensors")):
        found = sorted(p.name for p in src.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        raise FileNotFoundError(
            f"{str(src)!r} has no .safetensors weights{f' (found {found})' if found else ''}; we never unpickle "
            "weight files: re-save the model with save_pretrained(..., safe_serialization=True) first"
        )


def _pick_class(architectures: list[str], names, default: str) -> str:
    return next((a for a in architectures if a in names), default)


def _carry_files(src: Path, dst: Path) -> list[str]:
    carried = []
    for name in CARRIED_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            carried.append(name)
    return carried


def _probe_inputs(config, family: Family):
    """A few token ids every model of the family accepts: (1, T) ids below vocab_size, no padding."""
    import torch

    vocab = config.vocab_size
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 8
    length = max(1, min(7, positions - 2))
    ids = torch.arange(length).mul(7).add(3).remainder(vocab).unsqueeze(0)
    inputs = {"input_ids": ids}
    if family.is_seq2seq:
        inputs["decoder_input_ids"] = ids.flip(-1)
    return inputs


def _main_output(out):
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out.last_hidden_state


def _check_same_outputs(source, converted, family: Family, what: str) -> None:
    """Both models, in eval mode, give the same main output (logits or last hidden state) on probe ids."""
    import torch

    inputs = _probe_inputs(source.config, family)
    with torch.no_grad():
        a = _main_output(source.eval()(**inputs))
        b = _main_output(converted.eval()(**inputs))
    # same weights, but half-precision kernels may sum in another order
    tol = {torch.float16: 5e-3, torch.bfloat16: 3e-2}.get(a.dtype, 1e-4)
    a, b = a.float(), b.float()
    if a.shape != b.shape or not torch.allclose(a, b, atol=tol, rtol=tol):
        diff = (a - b).abs().max().item() if a.shape == b.shape else f"shapes {tuple(a.shape)} vs {tuple(b.shape)}"
        raise RuntimeError(f"{what}: the converted model does not reproduce the source (max difference {diff})")


def convert_from_transformers(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, check: bool = True) -> dict:
    """Convert a stock BERT / GPT-2 / BART checkpoint folder into a w2vformer checkpoint folder.

    Args:
        src_dir: folder with ``config.json``, safetensors weights and (optionally) tokenizer files.
        out_dir: output folder (replaced atomically; the tokenizer files and generation config are copied).
        check: reload the output and compare it with the source on a few token ids.

    Returns:
        dict: ``family`` (stock model_type), ``source_class``, ``class`` (ours) and ``carried`` (copied files).

    Raises:
        ValueError: the folder's model_type is not one of ``FAMILIES`` (the message lists them) or its config
            uses an option our models cannot express.
    """
    import importlib

    import transformers

    import w2vformer  # noqa: F401  (registers our Auto classes)

    src = Path(src_dir)
    model_type, architectures = read_model_type(src)
    family = FAMILIES.get(model_type)
    if family is None:
        hint = " (it is already a w2vformer checkpoint; use to-transformers)" if model_type in _BY_OURS else ""
        raise ValueError(
            f"cannot convert model_type {model_type!r} from transformers{hint}; supported source architectures: "
            f"{', '.join(FAMILIES)}"
        )
    _require_safetensors(src)
    converter = importlib.import_module(f"w2vformer.conversion.{family.conversion_module}")
    stock_name = _pick_class(architectures, family.classes, family.default_stock)
    stock = getattr(transformers, stock_name).from_pretrained(src, use_safetensors=True, dtype="auto")
    ours = converter.from_stock(stock)
    with atomic_dir(out_dir) as tmp:
        ours.save_pretrained(tmp)
        carried = _carry_files(src, tmp)
        if check:
            reloaded = type(ours).from_pretrained(tmp, dtype="auto")
            _check_same_outputs(stock, reloaded, family, f"{src} ({stock_name}) -> {type(ours).__name__}")
    return {"family": model_type, "source_class": stock_name, "class": type(ours).__name__, "carried": carried}


def convert_to_transformers(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, check: bool = True) -> dict:
    """Convert a w2vformer encoder / decoder / seq2seq checkpoint folder into a stock BERT / GPT-2 / BART one.

    Args:
        src_dir: our checkpoint folder (``config.json`` with a ``w2vformer_*`` model_type, safetensors).
        out_dir: output folder (replaced atomically; the tokenizer files and generation config are copied).
        check: reload the output with transformers alone and compare it with the source on a few token ids.

    Returns:
        dict: ``family`` (stock model_type), ``source_class``, ``class`` (stock) and ``carried``.

    Raises:
        ValueError: the model_type has no stock counterpart (the message lists the supported ones), or the
            config uses an option the stock class cannot express (from the family's ``config_to_stock``).
    """
    import importlib

    import transformers

    import w2vformer  # noqa: F401

    src = Path(src_dir)
    model_type, architectures = read_model_type(src)
    family = _BY_OURS.get(model_type)
    if family is None:
        if model_type == "w2vformer_word2vec":
            raise ValueError(
                "a Word2Vec checkpoint has no stock transformers architecture; export its vectors instead "
                "(w2vformer convert vectors SRC_DIR vectors.bin)"
            )
        raise ValueError(
            f"cannot convert model_type {model_type!r} to transformers; supported: "
            + ", ".join(f"{f.our_model_type} (-> {f.stock_model_type})" for f in FAMILIES.values())
        )
    _require_safetensors(src)
    converter = importlib.import_module(f"w2vformer.conversion.{family.conversion_module}")
    modeling = importlib.import_module(f"w2vformer.modeling.{family.modeling_module}")
    our_name = _pick_class(architectures, set(family.classes.values()), family.default_ours)
    ours = getattr(modeling, our_name).from_pretrained(src, dtype="auto")
    stock = converter.to_stock(ours)
    with atomic_dir(out_dir) as tmp:
        stock.save_pretrained(tmp)
        carried = _carry_files(src, tmp)
        if check:
            reloaded = getattr(transformers, type(stock).__name__).from_pretrained(tmp, dtype="auto")
            _check_same_outputs(ours, reloaded, family, f"{src} ({our_name}) -> {type(stock).__name__}")
    return {"family": family.stock_model_type, "source_class": our_name, "class": type(stock).__name__,
            "carried": carried}
