"""``import w2vformer`` registers our classes with the transformers Auto classes whatever the import order,
without loading transformers (and torch) itself: the registration happens once transformers is imported.

Each case runs in a fresh interpreter, since the order of first imports is what is tested."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = (
    "from transformers import AutoConfig\n"
    "from transformers.pipelines import PIPELINE_REGISTRY\n"
    "for t in ('w2vformer_word2vec', 'w2vformer_encoder', 'w2vformer_decoder', 'w2vformer_seq2seq'):\n"
    "    assert type(AutoConfig.for_model(t)).__module__.startswith('w2vformer.modeling.'), t\n"
    "assert 'seq2seq-generation' in PIPELINE_REGISTRY.get_supported_tasks()\n"
    "print('registered')\n"
)


def _run(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "could not register" not in run.stderr, run.stderr[-3000:]
    return run.stdout


def test_import_w2vformer_loads_neither_torch_nor_transformers():
    out = _run("import sys, w2vformer, w2vformer.cli\nprint(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "first",
    [
        "import w2vformer",  # then transformers: registered when transformers is imported
        "import transformers, w2vformer",  # transformers first: registered at once
        "from w2vformer.modeling.modeling_decoder import DecoderForCausalLM",  # transformers imported from inside ours
        "import w2vformer; w2vformer.Word2VecConfig(vocab_size=3)",  # through the lazy public names
        "from w2vformer.training.word2vec import train_word2vec; import w2vformer.modeling.attention",
        "from w2vformer.pipelines import Seq2SeqGenerationPipeline",  # a non-model module that imports transformers
    ],
)
def test_auto_classes_are_registered_whatever_the_import_order(first):
    assert "registered" in _run(first + "\n" + CHECK)


def test_a_saved_folder_loads_through_automodel_after_import_w2vformer(tmp_path):
    code = (
        "import w2vformer\n"
        "from transformers import AutoModelForCausalLM\n"
        "from w2vformer.modeling.configuration_decoder import DecoderConfig\n"
        "from w2vformer.modeling.modeling_decoder import DecoderForCausalLM\n"
        "cfg = DecoderConfig(vocab_size=19, hidden_size=12, num_attention_heads=3, intermediate_size=20,"
        " num_hidden_layers=1)\n"
        f"DecoderForCausalLM(cfg).save_pretrained({str(tmp_path)!r})\n"
        f"print(type(AutoModelForCausalLM.from_pretrained({str(tmp_path)!r})).__name__)\n"
    )
    assert _run(code).strip().endswith("DecoderForCausalLM")
