"""Test-session setup. Runs before any test module imports huggingface_hub or transformers.

- A private, temporary HF_HOME: tests never touch (or depend on) the user's cache, and nothing is
  downloaded (HF_HUB_OFFLINE stays unset only because the Hub tests talk to a server on 127.0.0.1).
"""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="w2vformer-tests-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"  # datasets: local folders and caches only (the Hub tests use their own server)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
