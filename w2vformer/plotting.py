"""Pictures: the attention matrices A' of the seed note, word vectors in 2-D, and loss curves.

    from w2vformer.plotting import plot_attention, plot_embeddings, plot_loss_curves

    plot_attention("runs/decoder", "the cat sat on the mat", "plots/")     # one PNG per layer + an overview
    plot_embeddings("runs/word2vec", ["king", "queen", "man", "woman"], "plots/words.png")
    plot_loss_curves(["runs/decoder"], "plots/loss.png")

Needs matplotlib (``pip install 'w2vformer[plot]'``). Every PNG is written to a temporary name and
renamed into place. Chinese, Japanese and Korean tokens are drawn with an installed CJK font when there
is one, else with the subset of Droid Sans Fallback the package ships, so they show as characters.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np

from w2vformer._io import atomic_write

__all__ = ["plot_attention", "plot_embeddings", "plot_loss_curves", "attention_maps", "cjk_font_path"]

_BUNDLED_FONT = Path(__file__).parent / "data" / "fonts" / "w2vformer-cjk.ttf"
_CJK_FONT_NAMES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                   "Droid Sans Fallback", "Source Han Sans SC", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
                   "PingFang SC", "Heiti SC")
MAX_TOKENS = 64  # longer inputs are cut (with a note in the title) so every label stays legible


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'w2vformer[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    _use_cjk_font()
    return plt


def cjk_font_path() -> str:
    """The CJK-capable font plots use: an installed one if matplotlib finds it, else the bundled subset."""
    from matplotlib import font_manager

    for name in _CJK_FONT_NAMES:
        try:
            return font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
        except ValueError:
            continue
    return str(_BUNDLED_FONT)


_font_ready = False


def _use_cjk_font() -> None:
    """Put a CJK font behind matplotlib's default, so Latin text keeps DejaVu and hanzi get real glyphs."""
    global _font_ready
    if _font_ready:
        return
    import matplotlib
    from matplotlib import font_manager

    path = cjk_font_path()
    if path == str(_BUNDLED_FONT):
        font_manager.fontManager.addfont(path)
    name = font_manager.FontProperties(fname=path).get_name()
    # matplotlib falls back glyph by glyph only across an explicit list of families
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", name]
    matplotlib.rcParams["axes.unicode_minus"] = False
    _font_ready = True


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------
# Attention


def _load_model_and_tokenizer(model_dir):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    import w2vformer  # noqa: F401  (registers our model types)

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"no model in {str(model_dir)!r} (config.json missing)")
    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type == "w2vformer_word2vec":
        raise ValueError(f"{str(model_dir)!r} is a Word2Vec model: it has no attention; use `plot embeddings`")
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager", use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def _token_labels(tokenizer, ids) -> list[str]:
    from w2vformer.conversion.embedding_init import token_surface

    labels = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if token in tokenizer.all_special_tokens:
            labels.append(token)
        else:
            text = token_surface(tokenizer, token)
            labels.append(("##" if token.startswith("##") else "") + (text or token))
    return labels


def attention_maps(model_dir, text: str, max_tokens: int = MAX_TOKENS):
    """Run ``text`` through the model and return its attention matrices A'.

    Returns:
        ``(maps, labels)``: ``maps`` is a dict from a block name ("self-attention", or for seq2seq
        "encoder self-attention", "decoder self-attention", "cross-attention") to an array of shape
        (layers, heads, T, S); ``labels`` maps the same names to (query tokens, key tokens).
    """
    import torch

    if not isinstance(text, str) or not text.strip():
        raise ValueError("give a non-empty sentence to draw its attention")
    model, tokenizer = _load_model_and_tokenizer(model_dir)
    enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)
    if "token_type_ids" not in inspect.signature(model.forward).parameters:
        enc.pop("token_type_ids", None)
    ids = enc["input_ids"][0].tolist()
    labels = _token_labels(tokenizer, ids)
    with torch.no_grad():
        if getattr(model.config, "is_encoder_decoder", False):
            # the decoder reads the sentence too (started with the decoder start token), so its self- and
            # cross-attention are drawn over the same tokens
            start = model.config.decoder_start_token_id
            dec = torch.tensor([[start] + ids[:-1]])
            out = model(**enc, decoder_input_ids=dec, output_attentions=True)
            dec_labels = _token_labels(tokenizer, dec[0].tolist())
            maps = {"encoder self-attention": out.encoder_attentions, "decoder self-attention": out.decoder_attentions,
                    "cross-attention": out.cross_attentions}
            names = {"encoder self-attention": (labels, labels), "decoder self-attention": (dec_labels, dec_labels),
                     "cross-attention": (dec_labels, labels)}
        else:
            out = model(**enc, output_attentions=True)
            maps = {"self-attention": out.attentions}
            names = {"self-attention": (labels, labels)}
    arrays = {}
    for name, layers in maps.items():
        if not layers or any(a is None for a in layers):
            raise ValueError(f"the model returned no attention weights for {name}; it must run with eager attention")
        arrays[name] = torch.stack([a[0] for a in layers]).float().numpy()  # (L, H, T, S)
    return arrays, names


def _heatmap(ax, matrix, q_labels, k_labels, title, show_labels=True):
    # one fixed scale, 0 to 1: each row of A' is a probability distribution, and a per-plot scale would make a
    # near-uniform row look as bright as a sharp one
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_title(title, fontsize=9)
    if show_labels:
        size = max(4, min(9, int(220 / max(len(q_labels), len(k_labels), 1))))
        ax.set_xticks(range(len(k_labels)), k_labels, rotation=90, fontsize=size)
        ax.set_yticks(range(len(q_labels)), q_labels, fontsize=size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    return image


def plot_attention(model_dir, text: str, output_dir, max_tokens: int = MAX_TOKENS) -> list[Path]:
    """Draw A' for every layer and head: one PNG per block and layer (heads side by side, tokens on both
    axes: row = the query token, column = the key it attends to), and an overview grid of all layers x heads.

    Args:
        model_dir: a saved encoder, decoder or encoder-decoder folder (with its tokenizer).
        text: the sentence to run.
        output_dir: the folder for the PNGs.
        max_tokens: longer inputs are truncated to this many tokens.

    Returns:
        The paths written, the overview first.
    """
    plt = _pyplot()
    arrays, names = attention_maps(model_dir, text, max_tokens)
    output_dir = Path(output_dir)
    written = []
    # overview: for each block, a grid of layers (rows) x heads (columns)
    n_rows = sum(a.shape[0] for a in arrays.values())
    n_heads = max(a.shape[1] for a in arrays.values())
    fig, axes = plt.subplots(n_rows, n_heads, figsize=(1.9 * n_heads + 1, 1.9 * n_rows + 0.8), squeeze=False)
    row = 0
    for name, a in arrays.items():
        for layer in range(a.shape[0]):
            for head in range(n_heads):
                ax = axes[row][head]
                if head < a.shape[1]:
                    _heatmap(ax, a[layer, head], *names[name], f"{name}\nlayer {layer} head {head}", show_labels=False)
                else:
                    ax.axis("off")
            row += 1
    fig.suptitle(f"A' = softmax(QK^T / sqrt(d)) for: {text[:60]!r}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    written.append(_save(fig, output_dir / "attention_overview.png"))
    for name, a in arrays.items():
        q_labels, k_labels = names[name]
        slug = name.replace(" ", "_").replace("-", "_")
        for layer in range(a.shape[0]):
            heads = a.shape[1]
            cols = min(heads, 4)
            rows = math.ceil(heads / cols)
            side = max(3.0, 0.28 * max(len(q_labels), len(k_labels)) + 1.2)
            fig, axes = plt.subplots(rows, cols, figsize=(side * cols, side * rows), squeeze=False)
            for head in range(rows * cols):
                ax = axes[head // cols][head % cols]
                if head < heads:
                    image = _heatmap(ax, a[layer, head], q_labels, k_labels, f"head {head}")
                else:
                    ax.axis("off")
            truncated = " (truncated)" if len(q_labels) >= max_tokens else ""
            fig.suptitle(f"{name}, layer {layer}{truncated}: each row (query) attends to the columns (keys)",
                         fontsize=11)
            fig.tight_layout(rect=(0, 0, 0.93, 0.95))
            fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02, label="attention weight")
            written.append(_save(fig, output_dir / f"attention_{slug}_layer{layer}.png"))
    return written


# ---------------------------------------------------------------------------------------------------
# Embeddings


def _vectors_for(source, words):
    """(labels, matrix) for ``words`` from a Word2Vec folder, a transformer folder or a WordVectors."""
    if hasattr(source, "get_vector"):
        wv = source
    else:
        path = Path(source)
        config = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else None
        if config is None:
            raise FileNotFoundError(f"no model in {str(path)!r} (config.json missing)")
        if config.get("model_type") == "w2vformer_word2vec":
            from w2vformer.keyedvectors import WordVectors

            wv = WordVectors.from_pretrained(path)
        else:
            model, tokenizer = _load_model_and_tokenizer(path)
            weight = model.get_input_embeddings().weight.detach().float().numpy()
            vocab = tokenizer.get_vocab()
            labels, rows = [], []
            for w in words:
                ids = tokenizer(w, add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    labels.append(w)
                    rows.append(weight[ids[0]])
                elif w in vocab:
                    labels.append(w)
                    rows.append(weight[vocab[w]])
                else:  # a word the tokenizer splits: the mean of its pieces
                    labels.append(w + "*")
                    rows.append(weight[ids].mean(0))
            return labels, np.stack(rows)
    missing = [w for w in words if w not in wv]
    if missing:
        raise KeyError(f"not in the vocabulary: {missing}; choose words the model knows")
    return list(words), np.stack([wv.get_vector(w) for w in words])


def plot_embeddings(source, words, output, method: str = "pca", title: str | None = None) -> Path:
    """A labelled 2-D projection of word vectors.

    Args:
        source: a Word2Vec folder, a transformer folder (its input embeddings; words the tokenizer splits
            are the mean of their pieces, marked ``*``), or a ``WordVectors``.
        words: the words to place (at least 3).
        output: the PNG path.
        method: "pca" (default) or "tsne" (needs scikit-learn).
    """
    if len(words) < 3:
        raise ValueError(f"give at least 3 words to project, got {list(words)}")
    if method not in ("pca", "tsne"):
        raise ValueError(f"unknown method {method!r}; choose 'pca' or 'tsne'")
    labels, matrix = _vectors_for(source, words)
    centred = matrix - matrix.mean(0)
    if method == "pca":
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        explained = (s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12)
        subtitle = f"PCA, {100 * explained:.0f}% of the variance"
    else:
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ImportError("method='tsne' needs scikit-learn: pip install scikit-learn (or use method='pca')") from None
        xy = TSNE(n_components=2, perplexity=min(30, len(labels) - 1), init="pca", random_state=0).fit_transform(centred)
        subtitle = "t-SNE"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(xy[:, 0], xy[:, 1], s=18, color="tab:blue")
    for (x, y), label in zip(xy, labels):
        ax.annotate(label, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=10)
    ax.set_title((title or f"Word vectors of {Path(str(source)).name}") + f"\n{subtitle}", fontsize=11)
    ax.grid(alpha=0.3)
    return _save(fig, Path(output))


# ---------------------------------------------------------------------------------------------------
# Loss curves


def _log_history(run) -> list[dict]:
    path = Path(run)
    path = path / "training_log.json" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"no training log at {str(path)!r}; pass a run folder made by `w2vformer train`")
    return json.loads(path.read_text())


def plot_loss_curves(runs, output, labels=None, title: str = "Training loss") -> Path:
    """Training (and evaluation) loss against steps for one or more runs.

    Args:
        runs: run folders (with ``training_log.json``) or the JSON files themselves.
        output: the PNG path.
        labels: a legend label per run (default: the folder names).
    """
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    labels = labels or [Path(r).name if Path(r).is_dir() else Path(r).parent.name for r in runs]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, label, color in zip(runs, labels, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
        history = _log_history(run)
        train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
        evals = sorted({h["step"]: h["eval_loss"] for h in history if "eval_loss" in h}.items())  # last per step
        if not train and not evals:
            raise ValueError(f"the log of {str(run)!r} has no loss entries (was logging_steps larger than the run?)")
        if train:
            ax.plot(*zip(*train), label=f"{label} (train)", color=color)
        if evals:
            ax.plot(*zip(*evals), "o--", label=f"{label} (eval)", color=color)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(output))
