"""Tokenizers trained from your own text with the ``tokenizers`` library, returned as transformers fast
tokenizers (``PreTrainedTokenizerFast``).

    from w2vformer.tokenization import train_tokenizer, save_tokenizer, demo_corpus_path
    tok = train_tokenizer(demo_corpus_path("en"), preset="decoder", vocab_size=4000)
    save_tokenizer(tok, "out/tokenizer")
"""

from w2vformer.tokenization.corpus import demo_corpus_path, iter_text_batches, iter_text_lines
from w2vformer.tokenization.presets import MODELS, PRESETS, Preset
from w2vformer.tokenization.trainer import detect_cjk_mode, save_tokenizer, train_tokenizer

__all__ = [
    "train_tokenizer",
    "save_tokenizer",
    "demo_corpus_path",
    "iter_text_lines",
    "iter_text_batches",
    "detect_cjk_mode",
    "PRESETS",
    "MODELS",
    "Preset",
]
