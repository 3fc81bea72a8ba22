"""Special tokens and post-processing per architecture (the shared convention of the project).

The special tokens come first in the vocabulary, in this order, so their ids are fixed:

| preset     | ids                                            | post-processing                         | default model |
| ---------- | ---------------------------------------------- | --------------------------------------- | ------------- |
| word2vec   | [PAD]=0 [UNK]=1                                | none                                    | wordlevel     |
| encoder    | [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4       | [CLS] A [SEP] / [CLS] A [SEP] B [SEP]   | wordpiece     |
|            |                                                | (+ token_type_ids 0 / 1)                |               |
| decoder    | [PAD]=0 [UNK]=1 <s>=2 </s>=3                   | <s> A  (eos is appended by training)    | bpe           |
| seq2seq    | [PAD]=0 [UNK]=1 <s>=2 </s>=3 [MASK]=4          | A </s> / A </s> B </s>                  | bpe           |
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Preset", "PRESETS", "MODELS"]

MODELS = ("wordlevel", "bpe", "wordpiece", "unigram")


@dataclass(frozen=True)
class Preset:
    """Special tokens (in id order), their roles, the post-processing templates and the default model.

    Args:
        special_tokens: token strings; token ``i`` gets id ``i``.
        roles: transformers attribute -> token (``{"pad_token": "[PAD]", ...}``).
        single, pair: ``tokenizers.processors.TemplateProcessing`` templates, or None for no post-processing.
        default_model: the tokenizer model used when ``train_tokenizer(model=None)``.
        model_input_names: what the tokenizer returns (``token_type_ids`` for the encoder only).
    """

    special_tokens: tuple[str, ...]
    roles: dict[str, str]
    single: str | None
    pair: str | None
    default_model: str
    model_input_names: tuple[str, ...] = ("input_ids", "attention_mask")


PRESETS: dict[str, Preset] = {
    "word2vec": Preset(
        special_tokens=("[PAD]", "[UNK]"),
        roles={"pad_token": "[PAD]", "unk_token": "[UNK]"},
        single=None,
        pair=None,
        default_model="wordlevel",
    ),
    "encoder": Preset(
        special_tokens=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
        roles={"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"},
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        default_model="wordpiece",
        model_input_names=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "decoder": Preset(
        special_tokens=("[PAD]", "[UNK]", "<s>", "</s>"),
        roles={"pad_token": "[PAD]", "unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>"},
        single="<s> $A",
        pair="<s> $A $B",
        default_model="bpe",
    ),
    "seq2seq": Preset(
        special_tokens=("[PAD]", "[UNK]", "<s>", "</s>", "[MASK]"),
        roles={"pad_token": "[PAD]", "unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>", "mask_token": "[MASK]"},
        single="$A </s>",
        pair="$A </s> $B </s>",
        default_model="bpe",
    ),
}
