"""The whole path of the seed note in one run, on the corpus shipped with the package.

    w2vformer quickstart                # English; --lang zh for Chinese; --quick for a 1-minute smoke run

1. trains a word-level tokenizer and shows what it does to a sentence;
2. trains Word2Vec (skip-gram) with it and prints nearest neighbours and an analogy: each word's
   dictionary meaning as a vector;
3. trains a byte-level BPE tokenizer and a small decoder (and an encoder) whose token embeddings start
   from those vectors (rows matched by token string), briefly, with ``Trainer``;
4. generates text, reloads every saved folder through the Auto classes and checks the outputs are
   identical;
5. draws the attention matrices A', the word vectors and the loss curves;
6. prints a summary of where everything is.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["run_quickstart", "QUICKSTART_LANGS"]


@dataclass(frozen=True)
class _Lang:
    sentence: str  # shown through the tokenizers, and the attention picture
    prompts: tuple[str, ...]
    neighbours: tuple[str, ...]
    analogy: tuple[tuple[str, ...], tuple[str, ...]]  # positive, negative
    plot_words: tuple[str, ...]


QUICKSTART_LANGS = {
    "en": _Lang(
        sentence="In the beginning God created the heavens and the earth.",
        prompts=("And God said", "The king of Israel"),
        neighbours=("king", "water", "father", "gold"),
        analogy=(("king", "woman"), ("man",)),
        plot_words=("king", "queen", "prince", "man", "woman", "son", "daughter", "father", "mother", "gold",
                    "silver", "bread", "wine", "water", "sea", "river"),
    ),
    "zh": _Lang(
        sentence="春眠不觉晓，处处闻啼鸟。",
        prompts=("明月", "白日依山尽"),
        neighbours=("山", "月", "水", "花"),
        analogy=(("王", "女"), ("男",)),
        plot_words=("山", "水", "江", "河", "月", "日", "花", "草", "春", "秋", "风", "雨", "男", "女"),
    ),
}


def _section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _trim(corpus: Path, max_lines: int | None, folder: Path) -> Path:
    """The first ``max_lines`` lines of the corpus (for --quick), or the corpus itself."""
    if not max_lines:
        return corpus
    out = folder / f"{corpus.name.split('.')[0]}-first{max_lines}.txt"
    from w2vformer._io import atomic_write

    with gzip.open(corpus, "rt", encoding="utf-8") as src, atomic_write(out) as dst:
        dst.writelines(itertools.islice(src, max_lines))
    return out


def run_quickstart(output_dir="quickstart-out", lang: str = "en", quick: bool = False, max_lines: int | None = None,
                   steps: int | None = None, seed: int = 0) -> dict:
    """Run the whole path and return a summary dict (paths and figures). See the module docstring.

    Args:
        output_dir: where every folder and picture goes.
        lang: "en" or "zh" (the shipped corpora).
        quick: a smoke run: the first 3,000 lines, 1 Word2Vec epoch, 30 training steps.
        max_lines: use only the first N lines of the corpus.
        steps: optimizer steps for each transformer (default 300, quick 30).
        seed: random seed.
    """
    if lang not in QUICKSTART_LANGS:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(QUICKSTART_LANGS)}")
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    import w2vformer  # noqa: F401  (registers the model types)
    from w2vformer.keyedvectors import WordVectors
    from w2vformer.plotting import plot_attention, plot_embeddings, plot_loss_curves
    from w2vformer.tokenization import demo_corpus_path, save_tokenizer, train_tokenizer
    from w2vformer.training.lm import train_transformer
    from w2vformer.training.word2vec import train_word2vec

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    info = QUICKSTART_LANGS[lang]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if quick:
        max_lines = max_lines or 3000
    steps = steps or (30 if quick else 300)
    corpus = _trim(demo_corpus_path(lang), max_lines, out)
    summary: dict = {"corpus": str(corpus), "output_dir": str(out)}

    # 1. tokenizer --------------------------------------------------------------------------------------
    _section("1. Tokenizer: text -> ids")
    word_tok = train_tokenizer([corpus], model="wordlevel", preset="word2vec", lowercase=True,
                               min_count=2 if quick else 5, show_progress=not quick)
    save_tokenizer(word_tok, out / "tokenizer-wordlevel")
    ids = word_tok(info.sentence)["input_ids"]
    print(f"vocabulary: {len(word_tok)} words (seen at least {2 if quick else 5} times)")
    print(f"text:   {info.sentence}")
    print(f"tokens: {word_tok.convert_ids_to_tokens(ids)}")
    print(f"ids:    {ids}")
    print("ids are 1-D and one-hot vectors are vocabulary-sized: neither keeps the relations between meanings.")

    # 2. Word2Vec ---------------------------------------------------------------------------------------
    _section("2. Word2Vec: ids -> vectors that keep relations (skip-gram)")
    w2v_dir = out / "word2vec"
    w2v, _ = train_word2vec([corpus], tokenizer=word_tok, objective="skipgram", vector_size=64, window=5,
                            negative=5, min_count=2 if quick else 5, epochs=1 if quick else 5, threads=2,
                            seed=seed + 1, output_dir=w2v_dir, progress=True)
    stats = getattr(w2v, "training_stats", {})
    if stats:
        print(f"trained on {stats.get('raw_words', 0):,} words in {stats.get('train_seconds', 0):.1f} s "
              f"({stats.get('words_per_second', 0):,.0f} words/s)")
    wv = WordVectors.from_pretrained(w2v_dir)
    neighbours = {}
    for word in info.neighbours:
        if word in wv:
            neighbours[word] = [(w, round(float(s), 3)) for w, s in wv.most_similar(word, topn=5)]
            print(f"nearest to {word!r}: " + ", ".join(f"{w} ({s:.2f})" for w, s in neighbours[word]))
    positive, negative = info.analogy
    analogy = None
    if all(w in wv for w in positive + negative):
        analogy = wv.most_similar(positive=list(positive), negative=list(negative), topn=3)
        print(f"{positive[0]} - {negative[0]} + {positive[1]} = " + ", ".join(f"{w} ({s:.2f})" for w, s in analogy))
    summary["word2vec"] = {"dir": str(w2v_dir), "vocab": len(wv), "neighbours": neighbours,
                           "analogy": [(w, float(s)) for w, s in (analogy or [])], **stats}

    # 3. transformers from the vectors ----------------------------------------------------------------
    _section("3. Transformers whose token embeddings start from the Word2Vec vectors")
    model_config = dict(hidden_size=64, num_attention_heads=4, intermediate_size=256, num_hidden_layers=2,
                        dropout=0.0 if quick else 0.1)
    runs = {}
    for task, name in (("clm", "decoder"), ("mlm", "encoder")):
        print(f"\n--- {name} ({'causal' if task == 'clm' else 'masked'} language model, {steps} steps) ---")
        result = train_transformer(
            task, [corpus], output_dir=out / name, vocab_size=2000 if quick else 8000, model_config=model_config,
            init_from_word2vec=w2v_dir, block_size=64, max_steps=steps, batch_size=16, learning_rate=1e-3,
            logging_steps=max(1, steps // 15), save_steps=max(10, steps // 2), seed=seed, progress=not quick)
        runs[name] = result
        print(result.init_report)
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in result.metrics.items()))

    # 4. generate and reload -----------------------------------------------------------------------------
    _section("4. Generate, and reload every folder through the Auto classes")
    decoder = runs["decoder"]
    tok = decoder.tokenizer
    tok.padding_side = "left"
    batch = tok(list(info.prompts), return_tensors="pt", padding=True)
    with torch.no_grad():
        generated = decoder.model.generate(**batch, max_new_tokens=20, do_sample=False,
                                           pad_token_id=tok.pad_token_id, repetition_penalty=1.3)
    texts = tok.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    for prompt, text in zip(info.prompts, texts):
        print(f"{prompt} -> {text.strip()}")
    summary["generations"] = dict(zip(info.prompts, texts))

    checks = {}
    for name, auto in (("decoder", AutoModelForCausalLM), ("encoder", AutoModelForMaskedLM), ("word2vec", AutoModel)):
        folder = out / name
        reloaded = auto.from_pretrained(folder).eval()
        reloaded_tok = AutoTokenizer.from_pretrained(folder)
        if name == "word2vec":
            same = torch.equal(reloaded.get_input_embeddings().weight, w2v.get_input_embeddings().weight)
        else:
            enc = reloaded_tok(info.sentence, return_tensors="pt")
            enc.pop("token_type_ids", None)
            with torch.no_grad():
                same = torch.allclose(reloaded(**enc).logits, runs[name].model(**enc).logits, atol=1e-5)
        checks[name] = f"{type(reloaded).__name__} via {auto.__name__}: " + ("identical" if same else "DIFFERENT")
        print(f"{folder}: {checks[name]}")
        if not same:
            raise RuntimeError(f"reloading {folder} gave different outputs")
    summary["reload_checks"] = checks

    # 5. pictures --------------------------------------------------------------------------------------
    _section("5. Pictures")
    plots = out / "plots"
    pictures = plot_attention(out / "decoder", info.sentence, plots / "attention-decoder")
    pictures += plot_attention(out / "encoder", info.sentence, plots / "attention-encoder")
    words = [w for w in info.plot_words if w in wv]
    if len(words) >= 3:
        pictures.append(plot_embeddings(wv, words, plots / "word2vec-embeddings.png",
                                        title="Word2Vec vectors (quickstart)"))
    pictures.append(plot_loss_curves([out / "decoder", out / "encoder"], plots / "loss.png",
                                     title="Training loss, embeddings from Word2Vec"))
    for p in pictures:
        print(p)
    summary["plots"] = [str(p) for p in pictures]

    # 6. summary -------------------------------------------------------------------------------------
    summary["seconds"] = round(time.perf_counter() - started, 1)
    from w2vformer._io import atomic_write

    with atomic_write(out / "summary.json") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False, default=str)
    _section("Summary")
    print(f"corpus:      {corpus}")
    print(f"tokenizer:   {out / 'tokenizer-wordlevel'}")
    print(f"word2vec:    {w2v_dir}  ({len(wv)} vectors of width {wv.vector_size})")
    print(f"decoder:     {out / 'decoder'}  (try: w2vformer generate {out / 'decoder'} \"{info.prompts[0]}\")")
    print(f"encoder:     {out / 'encoder'}")
    print(f"pictures:    {plots}/  (attention, word vectors, loss curves)")
    print(f"everything:  {out / 'summary.json'}  ({summary['seconds']:.0f} s)")
    return summary
