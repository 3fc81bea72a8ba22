"""Tokenizers trained from your own text with the ``tokenizers`` library, returned as transformers fast
tokenizers (``PreTrainedTokenizerFast``)."""
