"""Sharing on the Hugging Face Hub: auto_map filling, model cards, word2vec vector files, push helpers.

    model.save_pretrained("out")                       # config.json lists every Auto class of the family
    write_model_card("out", repo_id="me/tiny-w2v", language="en", datasets=["me/corpus"],
                     metrics={"train_loss": 2.31, "analogy_accuracy": 0.41})
    push_to_hub("out", "me/tiny-w2v", private=True)    # create_repo + upload_folder (card, vectors.bin)

Anyone then loads the checkpoint without w2vformer installed:
``AutoModel.from_pretrained("me/tiny-w2v", trust_remote_code=True)``. ``import w2vformer`` registers every
config and model class for remote code (``register_for_auto_class``), so ``save_pretrained`` copies the flat
``configuration_*.py`` / ``modeling_*.py`` / ``attention.py`` files into the folder; transformers alone would
list only the saved class in ``auto_map``, so :func:`install_auto_map_hooks` (called by
``import w2vformer``) makes every save fill in all the Auto classes of the family
from ``AUTO_CLASSES``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from w2vformer._io import atomic_write, open_safetensors, read_json_file

__all__ = [
    "auto_map_for",
    "fill_auto_map",
    "install_auto_map_hooks",
    "model_card",
    "write_model_card",
    "write_word2vec_vectors",
    "push_to_hub",
    "FAMILIES",
]

# model_type -> family name, the Hub pipeline tag, and the Auto classes the usage snippet prefers (in order).
FAMILIES: dict[str, dict[str, Any]] = {
    "w2vformer_word2vec": {"family": "word2vec", "pipeline_tag": "feature-extraction", "auto": ("AutoModel",)},
    "w2vformer_encoder": {"family": "encoder", "pipeline_tag": "fill-mask",
                          "auto": ("AutoModelForMaskedLM", "AutoModel")},
    "w2vformer_decoder": {"family": "decoder", "pipeline_tag": "text-generation",
                          "auto": ("AutoModelForCausalLM", "AutoModel")},
    "w2vformer_seq2seq": {"family": "seq2seq", "pipeline_tag": "text2text-generation",
                          "auto": ("AutoModelForSeq2SeqLM", "AutoModel")},
}
WORD2VEC_FILENAME = "vectors.bin"
# A card written before the repo id is known (e.g. at the end of training) names this placeholder; push_to_hub
# replaces it with the real repo id, so the usage snippet works once the model is on the Hub.
PLACEHOLDER_REPO_ID = "your-username/your-model"
# Config fields worth a line in the card, per family (those present in config.json are shown).
_ARCH_FIELDS = ("vocab_size", "vector_size", "hidden_size", "num_hidden_layers", "encoder_layers", "decoder_layers",
                "num_attention_heads", "intermediate_size", "hidden_act", "max_position_embeddings",
                "position_embedding_type", "norm_position", "tie_word_embeddings")
_WORD2VEC_TRAINING_FIELDS = ("objective", "loss", "cbow_mean", "window", "negative", "ns_exponent", "sample",
                             "min_count", "alpha", "min_alpha", "epochs", "seed")


# ------------------------------------------------------------------------------------------------ auto_map
def auto_map_for(model_type: str) -> dict[str, str]:
    """The ``auto_map`` of a w2vformer family: every Auto class it registers, as ``"module.Class"``.

    Args:
        model_type: one of the ``model_type`` keys of ``w2vformer.modeling.AUTO_CLASSES``.

    Returns:
        ``{"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel", ...}``; module names are the
        flat file names that ``save_pretrained`` copies into the checkpoint.
    """
    from w2vformer.modeling import AUTO_CLASSES

    if model_type not in AUTO_CLASSES:
        raise ValueError(f"model_type {model_type!r} is not a w2vformer family; known: {sorted(AUTO_CLASSES)}")
    config_module, config_name, models = AUTO_CLASSES[model_type]
    out = {"AutoConfig": f"{config_module.rsplit('.', 1)[-1]}.{config_name}"}
    for auto_name, (model_module, model_name) in models.items():
        out[auto_name] = f"{model_module.rsplit('.', 1)[-1]}.{model_name}"
    return out


def fill_auto_map(config) -> dict[str, str]:
    """Set ``config.auto_map`` to list every Auto class of the config's family.

    An entry already there wins if it names code in the folder (e.g. a subclass saved by the user); one that
    points into another repo (``"user/repo--modeling_x.X"``, as transformers writes after a Hub load) is
    replaced, since the folder being saved carries our code itself.

    Args:
        config: a w2vformer config (``config.model_type`` in ``AUTO_CLASSES``); other configs are left alone.

    Returns:
        The resulting ``auto_map`` (empty for configs that are not ours).
    """
    from w2vformer.modeling import AUTO_CLASSES

    existing = dict(getattr(config, "auto_map", None) or {})
    if getattr(config, "model_type", None) not in AUTO_CLASSES:
        return existing
    local = {k: v for k, v in existing.items() if isinstance(v, str) and "--" not in v}
    merged = {**existing, **auto_map_for(config.model_type), **local}
    config.auto_map = merged
    return merged


def install_auto_map_hooks() -> None:
    """Make ``save_pretrained`` of every registered w2vformer config class call :func:`fill_auto_map` first.

    A model's ``save_pretrained`` saves its config through the config's ``save_pretrained``, so this covers
    models, ``push_to_hub`` and ``Trainer`` checkpoints. Idempotent.
    """
    from w2vformer.modeling import AUTO_CLASSES, _load

    for config_module, config_name, _ in AUTO_CLASSES.values():
        config_cls = _load(config_module, config_name)
        current = config_cls.save_pretrained
        if getattr(current, "_w2vformer_fills_auto_map", False):
            continue

        @functools.wraps(current)
        def save_pretrained(self, save_directory, *args, _base=current, **kwargs):
            fill_auto_map(self)
            return _base(self, save_directory, *args, **kwargs)

        save_pretrained._w2vformer_fills_auto_map = True
        config_cls.save_pretrained = save_pretrained


# ------------------------------------------------------------------------------------------------ word2vec
def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no config.json; pass a folder written by save_pretrained")
    return read_json_file(path)


def _vocabulary(folder: Path) -> tuple[list[str], set[str]]:
    """Tokens of the tokenizer saved in ``folder`` in id order, and the special tokens."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no tokenizer.json; save the tokenizer into the folder too")
    data = read_json_file(path)
    vocab = dict(data.get("model", {}).get("vocab") or {})
    if isinstance(data.get("model", {}).get("vocab"), list):  # Unigram: [[piece, score], ...]
        vocab = {piece: i for i, (piece, _) in enumerate(data["model"]["vocab"])}
    special = set()
    for tok in data.get("added_tokens", []):
        vocab[tok["content"]] = tok["id"]
        if tok.get("special"):
            special.add(tok["content"])
    tokens = [None] * (max(vocab.values()) + 1 if vocab else 0)
    for tok, i in vocab.items():
        tokens[i] = tok
    return tokens, special


def write_word2vec_vectors(folder: str | os.PathLike, filename: str = WORD2VEC_FILENAME) -> Path:
    """Write the input vectors of a saved Word2Vec checkpoint in the word2vec C binary format.

    gensim users then load them as they load the word2vec repositories on the Hub:
    ``KeyedVectors.load_word2vec_format(path, binary=True)``. Special tokens ([PAD], [UNK], ...) are left out.

    Args:
        folder: a folder with ``config.json`` (model_type ``w2vformer_word2vec``), ``model.safetensors`` and the
            tokenizer (``tokenizer.json``).
        filename: name of the file written inside ``folder``.

    Returns:
        The path written.
    """
    from w2vformer.conversion.word2vec_format import write_word2vec

    folder = Path(folder)
    config = _read_config(folder)
    if config.get("model_type") != "w2vformer_word2vec":
        raise ValueError(f"{str(folder)!r} holds model_type {config.get('model_type')!r}, not a Word2Vec model; "
                         "word2vec vector files are written for w2vformer_word2vec checkpoints only")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no model.safetensors; save the model with save_pretrained")
    with open_safetensors(weights, framework="numpy") as f:
        keys = [k for k in f.keys() if k.endswith("in_embed.weight")]
        if len(keys) != 1:
            raise ValueError(f"{str(weights)!r} has no single 'in_embed.weight' tensor (found {keys}); is it a "
                             "Word2VecModel checkpoint?")
        vectors = f.get_tensor(keys[0])
    tokens, special = _vocabulary(folder)
    if len(tokens) > vectors.shape[0]:
        raise ValueError(f"the tokenizer has {len(tokens)} tokens but the model only {vectors.shape[0]} vectors; "
                         "save the tokenizer the model was trained with")
    keep = [i for i, tok in enumerate(tokens) if tok is not None and tok not in special]
    words = [tokens[i] for i in keep]
    bad = [w for w in words if not w or any(c.isspace() for c in w)]
    if bad:
        raise ValueError(f"token {bad[0]!r} is empty or contains whitespace, which the word2vec format cannot store")
    path = folder / filename
    write_word2vec(path, words, vectors[keep].astype("float32"), binary=True, progress=False)
    return path


# ------------------------------------------------------------------------------------------------ model card
def _example_words(folder: Path, n: int = 2) -> list[str]:
    try:
        tokens, special = _vocabulary(folder)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError):
        return ["hello", "world"][:n]
    words = [t for t in tokens if t and t not in special and t.isalpha()][:n]
    return words if len(words) == n else ["hello", "world"][:n]


def _usage(model_type: str | None, auto_map: dict, repo_id: str, words: list[str], has_vectors: bool,
           has_tokenizer: bool) -> str:
    """Python code that loads the model from the Hub; it runs as pasted (tests execute it)."""
    info = FAMILIES.get(model_type or "")
    remote = ", trust_remote_code=True" if auto_map else ""
    auto = next((a for a in (info["auto"] if info else ()) if a in auto_map), None)
    auto = auto or ("AutoModel" if not auto_map or "AutoModel" in auto_map else
                    next(a for a in auto_map if a != "AutoConfig"))
    family = info["family"] if info else None
    text = " ".join(words)
    lines = ["import torch", f"from transformers import {auto}" + (", AutoTokenizer" if has_tokenizer else ""), ""]
    if has_tokenizer:
        # trust_remote_code here too: AutoTokenizer reads config.json, whose auto_map would otherwise prompt
        lines.append(f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{remote})')
    lines.append(f'model = {auto}.from_pretrained("{repo_id}"{remote}).eval()')
    if family == "word2vec":
        lines += ["vectors = model.get_input_embeddings().weight.detach()  # (vocab_size, vector_size)"]
        if has_tokenizer:
            lines += [f"ids = tokenizer.convert_tokens_to_ids({words!r})",
                      "print(torch.cosine_similarity(vectors[ids[0]], vectors[ids[1]], dim=0).item())"]
    elif has_tokenizer and family in ("decoder", "seq2seq") and auto != "AutoModel":
        lines += [f'inputs = tokenizer("{text}", return_tensors="pt")',
                  'output = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],',
                  "                        max_new_tokens=10, do_sample=False)",
                  "print(tokenizer.decode(output[0], skip_special_tokens=True))"]
    elif has_tokenizer:
        mask = family == "encoder" and auto == "AutoModelForMaskedLM"
        sample = f"{words[0]} [MASK]" if mask else text
        lines += [f'inputs = tokenizer("{sample}", return_tensors="pt")',
                  "with torch.no_grad():",
                  '    output = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])']
        if mask:
            lines += ["position = (inputs[\"input_ids\"][0] == tokenizer.mask_token_id).nonzero()[0, 0]",
                      "print(tokenizer.decode(output.logits[0, position].argmax()))"]
        else:
            lines += ["print(output[0].shape)"]
    out = "```python\n" + "\n".join(lines) + "\n```\n"
    if has_vectors:
        out += ("\nThe input vectors are also in the word2vec C binary format, for gensim:\n\n```python\n"
                "from gensim.models import KeyedVectors\nfrom huggingface_hub import hf_hub_download\n\n"
                f'path = hf_hub_download("{repo_id}", "{WORD2VEC_FILENAME}")\n'
                "vectors = KeyedVectors.load_word2vec_format(path, binary=True)\n"
                f"print(vectors.most_similar({words[0]!r}, topn=3))\n```\n")
    return out


def _metric_type(name: str) -> str:
    name = name.lower()
    for key, metric in (("loss", "loss"), ("perplexity", "perplexity"), ("spearman", "spearmanr"),
                        ("pearson", "pearsonr"), ("accuracy", "accuracy"), ("analogy", "accuracy"),
                        ("wordsim", "spearmanr"), ("f1", "f1"), ("bleu", "bleu")):
        if key in name:
            return metric
    return re.sub(r"[^a-z0-9_]+", "_", name)


def _bullets(mapping: dict) -> str:
    return "".join(f"- {k}: `{v}`\n" for k, v in mapping.items())


def model_card(folder: str | os.PathLike, **info):
    """Build the model card of a saved checkpoint (offline). See :func:`write_model_card` for ``info``.

    Returns:
        A ``huggingface_hub.ModelCard``.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    known = {"repo_id", "model_name", "description", "language", "license", "datasets", "metrics", "training",
             "init_embeddings", "base_model", "tags", "pipeline_tag", "example_words"}
    unknown = sorted(set(info) - known)
    if unknown:
        raise ValueError(f"unknown model card field(s) {unknown}; known: {sorted(known)}")
    config = _read_config(folder)
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type, {})
    auto_map = config.get("auto_map") or {}
    repo_id = info.get("repo_id") or PLACEHOLDER_REPO_ID
    model_name = info.get("model_name") or repo_id.split("/")[-1]
    metrics = dict(info.get("metrics") or {})
    bad = {k: v for k, v in metrics.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
    if bad:
        raise ValueError(f"metrics must map names to numbers, got {bad}")
    datasets = info.get("datasets")
    datasets = [datasets] if isinstance(datasets, str) else list(datasets or [])
    pipeline_tag = info.get("pipeline_tag") or family.get("pipeline_tag")

    tags = ["w2vformer"]
    if auto_map:
        tags.append("custom_code")
    if family:
        tags.append(family["family"])
    if model_type == "w2vformer_word2vec":
        tags += ["word2vec", config.get("objective", "skipgram")]
    tags += list(info.get("tags") or [])
    eval_results = None
    if metrics and datasets:
        eval_results = [EvalResult(task_type=pipeline_tag or "other", dataset_type=datasets[0],
                                   dataset_name=datasets[0], metric_type=_metric_type(name), metric_name=name,
                                   metric_value=float(value)) for name, value in metrics.items()]
    data = ModelCardData(
        language=info.get("language"), license=info.get("license"), library_name="transformers",
        pipeline_tag=pipeline_tag, tags=tags, datasets=datasets or None, base_model=info.get("base_model"),
        metrics=sorted({_metric_type(n) for n in metrics}) or None, model_name=model_name,
        eval_results=eval_results,
    )

    has_vectors = (folder / WORD2VEC_FILENAME).is_file()
    has_tokenizer = (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()
    words = list(info.get("example_words") or _example_words(folder))
    kind = {"word2vec": "Word2Vec (CBOW / skip-gram) word vectors", "encoder": "An encoder-only transformer",
            "decoder": "A decoder-only transformer", "seq2seq": "An encoder-decoder transformer"}.get(
        family.get("family"), "A transformers model")
    body = [f"# {model_name}\n\n",
            (info.get("description") or f"{kind} made with w2vformer.") + "\n",
            "\n## Model\n\n", _bullets({"model_type": model_type,
                                        **{k: config[k] for k in _ARCH_FIELDS if k in config}})]
    if auto_map:
        body.append("\nThe repository carries its modeling code (" + ", ".join(
            sorted(p.name for p in folder.glob("*.py"))) + "), so it loads without w2vformer installed, with "
                    "`trust_remote_code=True` (read the code first). Auto classes: " + ", ".join(
            f"`{a}`" for a in auto_map) + ".\n")
    if info.get("init_embeddings"):
        body += ["\n## Initial embeddings\n\n", f"{info['init_embeddings']}\n"]
    training = dict(info.get("training") or {}) if not isinstance(info.get("training"), str) else {}
    if model_type == "w2vformer_word2vec":
        training = {**{k: config[k] for k in _WORD2VEC_TRAINING_FIELDS if k in config}, **training}
    if training or isinstance(info.get("training"), str) or datasets:
        body.append("\n## Training\n\n")
        if datasets:
            body.append("Data: " + ", ".join(f"[{d}](https://huggingface.co/datasets/{d})" for d in datasets) + "\n\n")
        if isinstance(info.get("training"), str):
            body.append(info["training"] + "\n\n")
        body.append(_bullets(training))
    if metrics:
        body += ["\n## Results\n\n", "| metric | value |\n| --- | --- |\n",
                 "".join(f"| {k} | {v:.4g} |\n" for k, v in metrics.items())]
    body += ["\n## Usage\n\n", _usage(model_type, auto_map, repo_id, words, has_vectors, has_tokenizer)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "".join(body))


def write_model_card(folder: str | os.PathLike, **info) -> Path:
    """Write ``README.md`` (YAML metadata + description + usage) into a saved checkpoint folder, atomically.

    Works offline. The family, architecture and Auto classes are read from the folder's ``config.json``.

    Args:
        folder: a folder written by ``save_pretrained`` (tokenizer and vectors.bin optional).
        **info: optional ``repo_id`` (for the usage snippet; default ``your-username/your-model``, which
            :func:`push_to_hub` replaces by the repo pushed to),
            ``model_name``, ``description``, ``language`` (str or list), ``license``, ``datasets`` (Hub dataset ids),
            ``metrics`` (name -> number, e.g. ``{"train_loss": 2.3, "eval_loss": 2.5, "analogy_accuracy": 0.4,
            "wordsim_spearman": 0.6}``), ``training`` (dict of settings, or a paragraph), ``init_embeddings``
            (where the initial embedding matrix came from), ``base_model``, ``tags`` (extra), ``pipeline_tag``
            (override), ``example_words`` (two tokens for the usage snippet).

    Returns:
        The path of ``README.md``.
    """
    card = model_card(folder, **info)
    path = Path(folder) / "README.md"
    with atomic_write(path, "w") as f:
        f.write(str(card))
    return path


# ------------------------------------------------------------------------------------------------ push
# Trainer output a pushed folder may hold that a Hub user never needs (optimizer state, pickled arguments).
_SKIP_DIRS = re.compile(r"^(checkpoint-\d+|runs|__pycache__)$")
_SKIP_FILES = re.compile(r"^(optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth|training_args\.bin)$")


def _stage(source, stage: Path, tokenizer) -> None:
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if not src.is_dir():
            raise NotADirectoryError(f"{str(src)!r} is not a folder; pass a folder written by save_pretrained")
        for path in src.rglob("*"):
            rel = path.relative_to(src)
            if any(part.startswith(".") or _SKIP_DIRS.match(part) for part in rel.parts[:-1]):
                continue
            if path.is_file() and not rel.name.startswith(".") and not _SKIP_FILES.match(rel.name):
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, stage / rel)
    elif hasattr(source, "save_pretrained"):
        source.save_pretrained(stage)
    else:
        raise ValueError(f"source must be a folder or a model with save_pretrained, got {type(source).__name__}")
    if tokenizer is not None:
        tokenizer.save_pretrained(stage)


def _retarget_card(path: Path, repo_id: str) -> None:
    """Put the real repo id into a card written with the placeholder one (title, model-index, snippets)."""
    text = path.read_text(encoding="utf-8")
    if PLACEHOLDER_REPO_ID not in text:
        return
    old_name, new_name = PLACEHOLDER_REPO_ID.split("/")[-1], repo_id.split("/")[-1]
    text = text.replace(PLACEHOLDER_REPO_ID, repo_id)
    text = text.replace(f"\n# {old_name}\n", f"\n# {new_name}\n").replace(f"- name: {old_name}\n",
                                                                            f"- name: {new_name}\n")
    with atomic_write(path, "w") as f:
        f.write(text)


def push_to_hub(source, repo_id: str, *, tokenizer=None, private: bool | None = None, token: str | None = None,
                revision: str | None = None, endpoint: str | None = None, commit_message: str | None = None,
                model_card: bool = True, word2vec_format: bool | None = None, **card_info):
    """Upload a checkpoint with its model card (and, for Word2Vec, ``vectors.bin``) to the Hub.

    ``HfApi.create_repo`` (``exist_ok``), ``create_branch`` when ``revision`` names a new branch, then
    ``upload_folder``. The source folder is not modified: files are staged in a temporary folder, leaving out
    hidden files and Trainer leftovers (``checkpoint-*/``, ``runs/``, optimizer/scheduler state,
    ``training_args.bin``).

    Args:
        source: a folder written by ``save_pretrained``, or a model (saved into the staging folder).
        repo_id: ``"user/name"`` on the Hub.
        tokenizer: a tokenizer to save alongside (when ``source`` is a model, or the folder lacks one).
        private: create the repo private (ignored if it exists).
        token: Hub token (default: the logged-in one / ``HF_TOKEN``).
        revision: branch to commit to (created from main if missing); default main.
        endpoint: Hub URL (default ``HF_ENDPOINT`` / huggingface.co).
        commit_message: default ``"Upload <repo name> with w2vformer"``.
        model_card: write ``README.md`` unless the source already has one and no ``card_info`` is given.
        word2vec_format: also upload the vectors in word2vec binary format; default True for Word2Vec.
        **card_info: fields of :func:`write_model_card` (``repo_id`` is filled in).

    Returns:
        ``huggingface_hub.CommitInfo`` of the commit (``.oid`` is its sha).
    """
    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or repo_id.count("/") > 1 or not repo_id.strip("/"):
        raise ValueError(f"repo_id must look like 'user/name', got {repo_id!r}")
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="w2vformer-push-") as tmp:
        stage = Path(tmp)
        _stage(source, stage, tokenizer)
        config = _read_config(stage)
        is_word2vec = config.get("model_type") == "w2vformer_word2vec"
        if word2vec_format is None:
            word2vec_format = is_word2vec
        if word2vec_format and not (stage / WORD2VEC_FILENAME).is_file():
            write_word2vec_vectors(stage)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id  # "name" -> "user/name"
        if model_card and (card_info or not (stage / "README.md").is_file()):
            write_model_card(stage, **{"repo_id": repo_id, **card_info})
        elif model_card:
            _retarget_card(stage / "README.md", repo_id)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=stage, revision=revision,
                                 commit_message=commit_message or f"Upload {repo_id.split('/')[-1]} with w2vformer")
