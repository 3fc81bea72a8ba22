"""Sharing on the Hub, end to end, against the Hub-compatible server in tests/hub_server.py (127.0.0.1 only).

User A (token ``hf_alice``) pushes with the real huggingface_hub / transformers clients; user B (``hf_bob``) loads
in a fresh Python process in which ``w2vformer`` cannot be imported, with the Auto classes and
``trust_remote_code=True``, and must get identical outputs. One subprocess checks every repo at once.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from hub_server import HubServer

ALICE, BOB = "hf_alice_token", "hf_bob_token"
TOKENS = {ALICE: "alice", BOB: "bob"}
WORDS = [a + b for a in ("ba", "ko", "mi", "tu", "re", "sa") for b in ("la", "ni", "po", "ve", "du")]  # 30 words
SPECIALS = {
    "w2vformer_word2vec": ["[PAD]", "[UNK]"],
    "w2vformer_encoder": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "w2vformer_decoder": ["[PAD]", "[UNK]", "<s>", "</s>"],
    "w2vformer_seq2seq": ["[PAD]", "[UNK]", "<s>", "</s>", "[MASK]"],
}
TEXT = "bala koni mipo tuve redu sala"
# huggingface_hub's own LFS upload passes a file object as ``data=`` (its httpx2 backend warns); not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
MAX_REQUESTS = 1000  # the whole module; a retry loop or a runaway client would blow past it
MAX_REQUESTS_PER_LOAD = 25  # user B: HEAD/GET per file of a from_pretrained (+ tokenizer, card, vectors)


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def hub():
    """The server, with huggingface_hub and transformers pointed at it (LFS mode, Xet off, as HUB.md says)."""
    import huggingface_hub.constants as constants
    import transformers.utils.hub as transformers_hub

    server = HubServer(tokens=TOKENS)
    server.start()
    saved = (constants.ENDPOINT, constants.HUGGINGFACE_CO_URL_TEMPLATE, constants.HF_HUB_DISABLE_XET,
             constants.HF_HUB_OFFLINE, transformers_hub._hf_api)
    saved_env = {k: os.environ.pop(k) for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") if k in os.environ}
    constants.HF_HUB_OFFLINE = False  # the server is local; a real token must never reach it
    constants.ENDPOINT = server.url
    constants.HUGGINGFACE_CO_URL_TEMPLATE = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    constants.HF_HUB_DISABLE_XET = True
    transformers_hub._hf_api = None  # transformers caches one HfApi with the endpoint it saw first
    try:
        yield server
    finally:
        (constants.ENDPOINT, constants.HUGGINGFACE_CO_URL_TEMPLATE, constants.HF_HUB_DISABLE_XET,
         constants.HF_HUB_OFFLINE, transformers_hub._hf_api) = saved
        os.environ.update(saved_env)
        assert all(not path.startswith("http") for _, path, _ in server.requests)
        assert len(server.requests) < MAX_REQUESTS, f"{len(server.requests)} requests to the test Hub"
        server.stop()


def make_tokenizer(model_type: str):
    """A word-level tokenizer with the preset's special tokens (ids fixed as in COMMON.md) and post-processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[model_type]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    names = dict(pad_token="[PAD]", unk_token="[UNK]")
    if model_type == "w2vformer_encoder":
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        names.update(cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    elif model_type == "w2vformer_decoder":
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
        names.update(bos_token="<s>", eos_token="</s>")
    elif model_type == "w2vformer_seq2seq":
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 3)])
        names.update(bos_token="<s>", eos_token="</s>", mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, **names)


def make_model(model_type: str, seed: int = 0):
    """A tiny random model of each family (odd sizes), in eval mode."""
    from w2vformer.modeling import AUTO_CLASSES, _load

    torch.manual_seed(seed)
    config_module, config_name, models = AUTO_CLASSES[model_type]
    config_cls = _load(config_module, config_name)
    vocab = len(SPECIALS[model_type]) + len(WORDS)
    common = dict(vocab_size=vocab, hidden_size=32, num_attention_heads=2, intermediate_size=37,
                  max_position_embeddings=64)
    if model_type == "w2vformer_word2vec":
        # seed 1 (the second push) switches to hierarchical softmax: its Huffman buffers must travel too
        loss = "hierarchical_softmax" if seed == 1 else "negative_sampling"
        config = config_cls(vocab_size=vocab, vector_size=13, objective="skipgram", loss=loss)
        counts = torch.randint(1, 1000, (vocab,), generator=torch.Generator().manual_seed(seed))
        model = _load(*models["AutoModel"])(config, token_counts=counts)
        with torch.no_grad():  # word2vec initialises out_embed to zeros; make outputs depend on both matrices
            model.out_embed.weight.normal_()
        return model.eval()
    if model_type == "w2vformer_encoder":
        config = config_cls(num_hidden_layers=2, type_vocab_size=2, **common)
        return _load(*models["AutoModelForMaskedLM"])(config).eval()
    if model_type == "w2vformer_decoder":
        config = config_cls(num_hidden_layers=2, bos_token_id=2, eos_token_id=3, **common)
        return _load(*models["AutoModelForCausalLM"])(config).eval()
    if model_type == "w2vformer_seq2seq":
        config = config_cls(encoder_layers=2, decoder_layers=2, **common)
        return _load(*models["AutoModelForSeq2SeqLM"])(config).eval()
    raise AssertionError(f"test_hub.py has no tiny model for family {model_type!r}: add one to make_model")


def families() -> list[str]:
    from w2vformer.modeling import AUTO_CLASSES

    return list(AUTO_CLASSES)


@torch.no_grad()
def reference_outputs(model_type: str, model, tokenizer) -> dict[str, torch.Tensor]:
    """What user B must reproduce: the same computation as B_SCRIPT's ``outputs`` on A's in-memory objects."""
    return _outputs(model_type, model, tokenizer, torch)


def _outputs(model_type, model, tokenizer, torch):
    # Kept in sync with B_SCRIPT by being the same source: B_SCRIPT embeds this function's text.
    enc = tokenizer("bala koni mipo tuve redu sala", return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    out = {"input_ids": ids}
    if model_type == "w2vformer_word2vec":
        out["vectors"] = model.get_input_embeddings().weight.detach().clone()
        out["hidden"] = model(center_ids=ids[0]).hidden
        out.update({name: buf.clone() for name, buf in model.named_buffers()})  # token_counts, hs_* (HS)
    elif model_type == "w2vformer_encoder":
        out["logits"] = model(input_ids=ids, attention_mask=mask).logits
    elif model_type == "w2vformer_decoder":
        out["logits"] = model(input_ids=ids, attention_mask=mask).logits
        out["generated"] = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                                          pad_token_id=0)
        model.fuse_qkv_projections()  # the remote code carries the inference options too
        out["fused_logits"] = model(input_ids=ids, attention_mask=mask).logits
        model.set_weight_layout("in_out")
        out["in_out_logits"] = model(input_ids=ids, attention_mask=mask).logits
        model.set_weight_layout("out_in").unfuse_qkv_projections()
    elif model_type == "w2vformer_seq2seq":
        start = torch.tensor([[model.config.decoder_start_token_id, 5, 6, 7]])
        out["logits"] = model(input_ids=ids, attention_mask=mask, decoder_input_ids=start).logits
        out["generated"] = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False)
    elif model_type == "bert":
        out["logits"] = model(input_ids=ids, attention_mask=mask).logits
    return out


B_SCRIPT = r'''
import contextlib, io, json, re, sys
spec = json.load(open(sys.argv[1]))
result = {"errors": {}, "classes": {}, "snippets": {}}
try:
    import w2vformer  # noqa: F401
    result["w2vformer_importable"] = True
except ImportError:
    result["w2vformer_importable"] = False
import torch
import transformers
from huggingface_hub import hf_hub_download
from safetensors.torch import save_file

OUTPUTS_SOURCE

tensors = {}
for case in spec["cases"]:
    name, kwargs = case["name"], {}
    if case.get("revision"):
        kwargs["revision"] = case["revision"]
    try:
        model = getattr(transformers, case["auto"]).from_pretrained(
            case["repo"], **kwargs, **({"trust_remote_code": True} if case["trust"] else {})).eval()
    except Exception as e:  # the expected failures are recorded and asserted by the test
        result["errors"][name] = f"{type(e).__name__}: {e}"
        continue
    result["classes"][name] = [type(model).__name__, type(model).__module__]
    if case.get("kind") is None:
        continue
    tokenizer = transformers.AutoTokenizer.from_pretrained(case["repo"], **kwargs, trust_remote_code=case["trust"])
    result.setdefault("tokenizers", {})[name] = [tokenizer.get_vocab(), tokenizer.special_tokens_map]
    with torch.no_grad():
        for key, value in _outputs(case["kind"], model, tokenizer, torch).items():
            tensors[f"{name}/{key}"] = value.contiguous()
    if case.get("vectors_bin"):
        from gensim.models import KeyedVectors
        kv = KeyedVectors.load_word2vec_format(hf_hub_download(case["repo"], "vectors.bin", **kwargs), binary=True)
        result["gensim_words"] = list(kv.index_to_key)
        tensors[f"{name}/gensim"] = torch.from_numpy(kv.vectors.copy())
    if case.get("snippet"):
        card = open(hf_hub_download(case["repo"], "README.md", **kwargs), encoding="utf-8").read()
        blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                for block in blocks:
                    exec(compile(block, f"README.md of {case['repo']}", "exec"), {})
            result["snippets"][name] = {"blocks": len(blocks), "stdout": buf.getvalue()}
        except Exception as e:
            result["snippets"][name] = {"blocks": len(blocks), "error": f"{type(e).__name__}: {e}"}
save_file(tensors, sys.argv[2])
json.dump(result, open(sys.argv[3], "w"))
'''


def run_user_b(hub: HubServer, cases: list[dict], tmp: Path) -> tuple[dict, dict]:
    """Run B_SCRIPT in a fresh interpreter without w2vformer: ``python -S`` (no .pth files, so no editable
    finder) with only the venv's site-packages on PYTHONPATH, a fresh HF_HOME, B's token, cwd outside the repo."""
    import inspect

    from safetensors.torch import load_file

    tmp.mkdir(parents=True, exist_ok=True)
    script = B_SCRIPT.replace("OUTPUTS_SOURCE", inspect.getsource(_outputs))
    (tmp / "user_b.py").write_text(script)
    (tmp / "spec.json").write_text(json.dumps({"cases": cases}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PYTHONNOUSERSITE": "1",
        "HOME": str(tmp),
        "HF_HOME": str(tmp / "hf_home"),
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": BOB,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        # user A's reference outputs were computed here: the same thread count gives the same float sums
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "TOKENIZERS_PARALLELISM": "false",
        "NO_PROXY": "127.0.0.1",
        # anything not addressed to the test Hub goes to a closed port instead of the network
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
    }
    proc = subprocess.run([sys.executable, "-S", str(tmp / "user_b.py"), str(tmp / "spec.json"),
                           str(tmp / "out.safetensors"), str(tmp / "out.json")],
                          cwd=tmp, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"user B's process failed:\n{proc.stderr[-4000:]}"
    return json.loads((tmp / "out.json").read_text()), load_file(str(tmp / "out.safetensors"))


def push_family(model_type: str, repo_id: str, tmp: Path, seed: int = 0, native: bool = False):
    """Alice pushes model + tokenizer: with transformers' own ``model.push_to_hub`` / ``tokenizer.push_to_hub``
    (``native``), or saves them and uses w2vformer.hub.push_to_hub (model card, vectors.bin for Word2Vec)."""
    from w2vformer.hub import push_to_hub

    model, tokenizer = make_model(model_type, seed), make_tokenizer(model_type)
    if native:
        tokenizer.push_to_hub(repo_id, token=ALICE)
        return model, tokenizer, model.push_to_hub(repo_id, token=ALICE)
    folder = tmp / f"{repo_id.replace('/', '--')}-{seed}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info = push_to_hub(folder, repo_id, token=ALICE, language="en", datasets=["alice/tiny-corpus"],
                       metrics={"train_loss": 2.5, "eval_loss": 2.75})
    return model, tokenizer, info


def tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(SPECIALS["w2vformer_encoder"]) + len(WORDS), hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    return BertForMaskedLM(config).eval()


def assert_same(expected: dict, got: dict, name: str):
    for key, value in expected.items():
        assert f"{name}/{key}" in got, f"{name}: user B produced no {key!r}"
        other = got[f"{name}/{key}"]
        assert other.shape == value.shape, f"{name}/{key}: shape {tuple(other.shape)} != {tuple(value.shape)}"
        assert torch.equal(other, value), f"{name}/{key}: max diff {(other.float() - value.float()).abs().max()}"


# ------------------------------------------------------------------------------------------------ round trip
def test_user_b_loads_every_family_from_the_hub_without_w2vformer(hub, tmp_path):
    """Per family: A pushes (LFS for weights), B loads with Auto classes + trust_remote_code and gets identical
    outputs and tokenizer; a second push is what B's next load gets while the first commit still loads by sha;
    without trust_remote_code transformers refuses; the card's usage snippets run as pasted."""
    from w2vformer.hub import FAMILIES, auto_map_for

    cases, expected, tokenizers = [], {}, {}
    for model_type in families():
        repo = f"alice/tiny-{model_type.split('_')[1]}"
        model, tokenizer, first = push_family(model_type, repo, tmp_path, seed=0, native=True)
        model2, _, second = push_family(model_type, repo, tmp_path, seed=1)  # retrained weights, same repo
        assert first.oid != second.oid
        kind = model_type
        main_auto = next(a for a in FAMILIES[model_type]["auto"] if a in auto_map_for(model_type))
        name = model_type.split("_")[1]
        expected[f"{name}-v2"] = reference_outputs(model_type, model2, tokenizer)
        expected[f"{name}-v1"] = reference_outputs(model_type, model, tokenizer)
        tokenizers[f"{name}-v2"] = tokenizers[f"{name}-v1"] = tokenizer
        cases += [
            {"name": f"{name}-v2", "repo": repo, "auto": main_auto, "trust": True, "kind": kind,
             "vectors_bin": model_type == "w2vformer_word2vec", "snippet": True},
            {"name": f"{name}-v1", "repo": repo, "auto": main_auto, "trust": True, "kind": kind,
             "revision": first.oid},
            {"name": f"{name}-no-trust", "repo": repo, "auto": main_auto, "trust": False},
        ]
        # every other Auto class of the family loads the same checkpoint
        cases += [{"name": f"{name}-{auto}", "repo": repo, "auto": auto, "trust": True}
                  for auto in auto_map_for(model_type) if auto not in ("AutoConfig", main_auto)]
        # the weights went through Git-LFS, the code and config inline, as on the real Hub
        tree = {e["path"]: e for e in _tree(hub, repo)}
        assert "lfs" in tree["model.safetensors"] and "lfs" not in tree["config.json"], tree
        assert any(p.startswith("modeling_") for p in tree) and "README.md" in tree
    bert = tiny_bert()
    bert.push_to_hub("alice/stock-bert", token=ALICE)  # transformers' own push_to_hub, a stock model
    make_tokenizer("w2vformer_encoder").push_to_hub("alice/stock-bert", token=ALICE)
    tokenizers["bert"] = make_tokenizer("w2vformer_encoder")
    expected["bert"] = reference_outputs("bert", bert, tokenizers["bert"])
    cases.append({"name": "bert", "repo": "alice/stock-bert", "auto": "AutoModelForMaskedLM", "trust": False,
                  "kind": "bert"})
    cases.append({"name": "private", "repo": _private_repo(hub, tmp_path), "auto": "AutoModel", "trust": True})

    start = len(hub.requests)
    result, got = run_user_b(hub, cases, tmp_path / "user_b")
    per_load = (len(hub.requests) - start) / len(cases)
    print(f"user B: {len(cases)} loads, {len(hub.requests) - start} requests")
    assert per_load < MAX_REQUESTS_PER_LOAD, f"user B made {per_load:.1f} requests per load"

    assert result["w2vformer_importable"] is False, "user B's process could import w2vformer"
    assert set(result["errors"]) == {f"{m.split('_')[1]}-no-trust" for m in families()} | {"private"}, \
        result["errors"]
    for name, error in result["errors"].items():
        if name == "private":
            assert "not a valid model identifier" in error or "Repository Not Found" in error, error
        else:  # transformers' own message
            assert "ValueError" in error and "trust_remote_code=True" in error and "custom code" in error, error
    for name, want in expected.items():
        assert_same(want, got, name)
        tokenizer = tokenizers[name]  # B's tokenizer is A's: same vocabulary, same special tokens
        assert result["tokenizers"][name] == [tokenizer.get_vocab(), tokenizer.special_tokens_map], name
    for model_type in families():
        name = model_type.split("_")[1]
        cls_name, module = result["classes"][f"{name}-v2"]
        assert module.startswith("transformers_modules."), f"{name}: loaded {module}, not the repo's remote code"
        for auto in auto_map_for(model_type):
            if auto != "AutoConfig":
                key = f"{name}-{auto}" if f"{name}-{auto}" in result["classes"] else f"{name}-v2"
                assert result["classes"][key][0] == auto_map_for(model_type)[auto].split(".")[1], (auto, result)
        snippet = result["snippets"][f"{name}-v2"]
        assert "error" not in snippet and snippet["blocks"] >= 1 and snippet["stdout"], (name, snippet)
    if "w2vformer_word2vec" in families():
        vectors = expected["word2vec-v2"]["vectors"]
        specials = len(SPECIALS["w2vformer_word2vec"])
        assert result["gensim_words"] == WORDS
        assert torch.equal(got["word2vec-v2/gensim"], vectors[specials:])
    assert result["classes"]["bert"][0] == "BertForMaskedLM"


def _tree(hub: HubServer, repo: str) -> list[dict]:
    from huggingface_hub import HfApi

    api = HfApi(token=ALICE)
    return [{"path": f.path, **({"lfs": f.lfs} if getattr(f, "lfs", None) else {})}
            for f in api.list_repo_tree(repo, recursive=True) if hasattr(f, "size")]


def _private_repo(hub: HubServer, tmp: Path) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=ALICE)
    repo = api.create_repo("alice/secret", private=True).repo_id
    tiny_bert().save_pretrained(tmp / "secret")
    api.upload_folder(repo_id=repo, folder_path=tmp / "secret")
    return repo


# ------------------------------------------------------------------------------------------------ access control
def test_private_repo_is_invisible_to_others(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError
    from transformers import AutoModelForMaskedLM

    repo = HfApi(token=ALICE).create_repo("alice/private-bert", private=True).repo_id
    tiny_bert().push_to_hub(repo, token=ALICE)
    assert HfApi(token=ALICE).model_info(repo).private is True
    for token in (BOB, False):  # another user, and nobody
        with pytest.raises(RepositoryNotFoundError):
            HfApi(token=token).model_info(repo)
    with pytest.raises(OSError, match="not a valid model identifier|Repository Not Found"):
        AutoModelForMaskedLM.from_pretrained(repo, token=BOB)
    assert AutoModelForMaskedLM.from_pretrained(repo, token=ALICE).config.hidden_size == 32


def test_other_users_cannot_push_to_your_repo(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    bert = tiny_bert()
    first = bert.push_to_hub("alice/guarded", token=ALICE)
    with pytest.raises(HfHubHTTPError) as err:
        tiny_bert(seed=1).push_to_hub("alice/guarded", token=BOB)
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=BOB).create_repo("alice/bobs-idea")
    assert err.value.response.status_code == 403
    assert HfApi(token=BOB).model_info("alice/guarded").sha == first.oid  # unchanged


def test_second_push_is_loaded_next_and_first_revision_by_sha(hub):
    from transformers import AutoModelForMaskedLM

    ids = torch.tensor([[2, 7, 8, 9, 3]])
    v1, v2 = tiny_bert(seed=0), tiny_bert(seed=1)
    first = v1.push_to_hub("alice/evolving", token=ALICE)
    assert torch.equal(AutoModelForMaskedLM.from_pretrained("alice/evolving")(ids).logits, v1(ids).logits)
    second = v2.push_to_hub("alice/evolving", token=ALICE)
    assert torch.equal(AutoModelForMaskedLM.from_pretrained("alice/evolving")(ids).logits, v2(ids).logits)
    old = AutoModelForMaskedLM.from_pretrained("alice/evolving", revision=first.oid)
    assert torch.equal(old(ids).logits, v1(ids).logits)
    assert first.oid != second.oid


def test_push_with_the_clients_default_settings(hub, monkeypatch):
    """Xet on (the client's default): with the server answering uploadMode "regular" every file goes inline in
    the commit, and the model loads back; no LFS or Xet request is made."""
    import huggingface_hub.constants as constants
    from transformers import AutoModelForMaskedLM

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    monkeypatch.setattr(hub, "upload_mode", "regular")
    start = len(hub.requests)
    bert = tiny_bert(seed=3)
    bert.push_to_hub("alice/inline-bert", token=ALICE)
    paths = [p for _, p, _ in hub.requests[start:]]
    assert not any("lfs" in p or "xet" in p for p in paths), paths
    assert not any("lfs" in e for e in _tree(hub, "alice/inline-bert"))
    ids = torch.tensor([[2, 9, 10, 3]])
    assert torch.equal(AutoModelForMaskedLM.from_pretrained("alice/inline-bert")(ids).logits, bert(ids).logits)


def test_push_helper_with_a_model_object_and_its_tokenizer(hub):
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    from w2vformer.hub import push_to_hub

    model_type = families()[0]
    info = push_to_hub(make_model(model_type), "helper-repo", tokenizer=make_tokenizer(model_type), token=ALICE,
                       revision="v1", init_embeddings="random", training={"epochs": 1})
    files = set(HfApi(token=ALICE).list_repo_files("alice/helper-repo", revision=info.oid))
    module = auto_map_module(model_type)
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", f"{module}.py"} <= files
    assert ("vectors.bin" in files) == (model_type == "w2vformer_word2vec")
    card = ModelCard.load(hf_hub_download("alice/helper-repo", "README.md", revision="v1"))
    assert 'from_pretrained("alice/helper-repo", trust_remote_code=True)' in card.text  # namespace filled in
    with pytest.raises(ValueError, match="repo_id must look like"):
        push_to_hub(make_model(model_type), "a/b/c", token=ALICE)


def auto_map_module(model_type: str) -> str:
    from w2vformer.modeling import AUTO_CLASSES

    return next(iter(AUTO_CLASSES[model_type][2].values()))[0]


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_push_uploads_folder_with_card_to_a_private_branch(hub, tmp_path, capsys):
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    from w2vformer.cli import main

    model_type = families()[0]
    from w2vformer.hub import write_model_card

    folder = tmp_path / "saved"
    make_model(model_type).save_pretrained(folder)
    make_tokenizer(model_type).save_pretrained(folder)
    write_model_card(folder, language="en", metrics={"eval_loss": 1.5})  # as training writes it: no repo id yet
    before = sorted(p.name for p in folder.iterdir())
    (folder / "checkpoint-7").mkdir()  # Trainer leftovers stay home
    (folder / "checkpoint-7" / "optimizer.pt").write_bytes(b"state")
    (folder / "training_args.bin").write_bytes(b"pickle")
    argv = ["push", str(folder), "alice/cli-repo", "--private", "--revision", "dev", "--token", ALICE,
            "--endpoint", hub.url]
    assert main(argv) == 0
    assert "alice/cli-repo" in capsys.readouterr().out
    leftovers = ["checkpoint-7", "training_args.bin"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(before + leftovers)  # the source is untouched
    api = HfApi(token=ALICE)
    assert api.model_info("alice/cli-repo").private is True
    files = set(api.list_repo_files("alice/cli-repo", revision="dev"))
    assert set(before) | {"README.md"} <= files
    assert not any("checkpoint" in f or f == "training_args.bin" for f in files), files
    if model_type == "w2vformer_word2vec":
        assert "vectors.bin" in files
    assert api.list_repo_files("alice/cli-repo") == [".gitattributes"]  # main untouched
    card = ModelCard.load(hf_hub_download("alice/cli-repo", "README.md", revision="dev", token=ALICE))
    assert card.data.language == "en" and "w2vformer" in card.data.tags  # the card written before the push
    assert 'from_pretrained("alice/cli-repo"' in card.text and "your-username" not in card.text
    assert card.text.lstrip().startswith("# cli-repo") and "| eval_loss | 1.5 |" in card.text
    # Bob is refused with one clear line, no traceback
    assert main(["push", str(folder), "alice/cli-repo", "--token", BOB, "--endpoint", hub.url]) == 1
    assert "refused" in capsys.readouterr().err
    assert main(["push", str(tmp_path / "missing"), "alice/x", "--token", ALICE]) == 2


# ------------------------------------------------------------------------------------------------ export (offline)
@pytest.mark.parametrize("model_type", ["w2vformer_word2vec", "w2vformer_encoder", "w2vformer_decoder",
                                        "w2vformer_seq2seq"])
def test_save_writes_remote_code_and_full_auto_map(model_type, tmp_path):
    from w2vformer.hub import auto_map_for
    from w2vformer.modeling import AUTO_CLASSES

    if model_type not in AUTO_CLASSES:
        pytest.fail(f"family {model_type!r} is not registered in w2vformer.modeling.AUTO_CLASSES")
    make_model(model_type).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == auto_map_for(model_type)
    assert set(config["auto_map"]) == {"AutoConfig", *AUTO_CLASSES[model_type][2]}
    for target in config["auto_map"].values():
        module, cls = target.split(".")
        source = (tmp_path / f"{module}.py").read_text()
        assert re.search(rf"^class {cls}\b", source, flags=re.M), f"{module}.py does not define {cls}"
    check_remote_code_is_safe(tmp_path)


def test_fill_auto_map_keeps_local_entries_and_replaces_other_repos(tmp_path):
    from transformers import BertConfig

    from w2vformer.hub import auto_map_for, fill_auto_map

    model_type = families()[0]
    config = make_model(model_type).config
    ours = auto_map_for(model_type)
    config.auto_map = {"AutoModel": "alice/old--modeling_x.Old", "AutoModelForMaskedLM": "mine.MySubclass"}
    assert fill_auto_map(config) == {**ours, "AutoModelForMaskedLM": "mine.MySubclass"}
    config.save_pretrained(tmp_path)  # the hook: every save fills it
    config.auto_map = None
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == ours
    assert fill_auto_map(BertConfig()) == {}  # not ours: untouched


FORBIDDEN_MODULES = {"subprocess", "socket", "urllib", "requests", "http", "httpx", "aiohttp", "ftplib",
                     "telnetlib", "smtplib", "pty", "ctypes", "pickle", "marshal"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}  # called by bare name
FORBIDDEN_OS = {"system", "popen", "execv", "execve", "execl", "execlp", "execvp", "spawnl", "spawnv", "fork",
                "startfile"}  # called as os.<name>


def check_remote_code_is_safe(folder: Path) -> None:
    """The copied modeling files import no network/shell module and call no eval/exec/os.system (AST + text)."""
    files = sorted(folder.glob("*.py"))
    assert files, f"no remote code in {folder}"
    for path in files:
        source = path.read_text()
        for banned in ("subprocess", "os.system", "socket", "urllib", "requests.", "import requests"):
            assert banned not in source, f"{path.name} mentions {banned!r}"
        assert not re.search(r"(?<![\w.])(eval|exec)\(", source), f"{path.name} calls eval/exec"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
                    if isinstance(node, ast.ImportFrom) and node.level:
                        assert (folder / f"{name}.py").is_file(), f"{path.name}: .{name} not shipped"
            elif isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name):
                    assert fn.id not in FORBIDDEN_BUILTINS, f"{path.name}:{node.lineno} calls {fn.id}()"
                elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id == "os":
                    assert fn.attr not in FORBIDDEN_OS, f"{path.name}:{node.lineno} calls os.{fn.attr}()"


def test_model_card_metadata_and_body(tmp_path):
    from huggingface_hub import ModelCard

    from w2vformer.hub import write_model_card, write_word2vec_vectors

    model_type = "w2vformer_word2vec" if "w2vformer_word2vec" in families() else families()[0]
    make_model(model_type).save_pretrained(tmp_path)
    make_tokenizer(model_type).save_pretrained(tmp_path)
    if model_type == "w2vformer_word2vec":
        write_word2vec_vectors(tmp_path)
    metrics = {"train_loss": 2.31, "eval_loss": 2.5, "analogy_accuracy": 0.41, "wordsim_spearman": 0.62}
    path = write_model_card(tmp_path, repo_id="alice/w2v", language="en", license="apache-2.0",
                            datasets=["alice/corpus"], metrics=metrics, training={"batch_size": 13},
                            init_embeddings="Word2Vec vectors of alice/w2v-base")
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers" and data.language == "en" and data.license == "apache-2.0"
    assert data.datasets == ["alice/corpus"]
    assert {"w2vformer", "custom_code"} <= set(data.tags)
    assert {r.metric_name: r.metric_value for r in data.eval_results} == metrics
    assert set(data.metrics) == {"loss", "accuracy", "spearmanr"}
    assert 'from_pretrained("alice/w2v", trust_remote_code=True)' in card.text
    assert "alice/w2v-base" in card.text and "batch_size" in card.text
    if model_type == "w2vformer_word2vec":
        assert data.pipeline_tag == "feature-extraction" and {"word2vec", "skipgram"} <= set(data.tags)
        assert "load_word2vec_format" in card.text and "vectors.bin" in card.text
    with pytest.raises(ValueError, match="unknown model card field"):
        write_model_card(tmp_path, langauge="en")
    with pytest.raises(ValueError, match="metrics must map names to numbers"):
        write_model_card(tmp_path, metrics={"loss": "low"})
    with pytest.raises(FileNotFoundError, match="config.json"):
        write_model_card(tmp_path / "nothing")


def test_word2vec_vectors_bin_reads_back_in_gensim(tmp_path):
    from gensim.models import KeyedVectors

    from w2vformer.hub import write_word2vec_vectors

    model = make_model("w2vformer_word2vec")
    model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        write_word2vec_vectors(tmp_path)
    make_tokenizer("w2vformer_word2vec").save_pretrained(tmp_path)
    kv = KeyedVectors.load_word2vec_format(write_word2vec_vectors(tmp_path), binary=True)
    assert kv.index_to_key == WORDS  # [PAD] and [UNK] left out, ids in order
    specials = len(SPECIALS["w2vformer_word2vec"])
    assert torch.equal(torch.from_numpy(kv.vectors), model.get_input_embeddings().weight.detach()[specials:])
    tiny_bert().save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="not a Word2Vec model"):
        write_word2vec_vectors(tmp_path / "bert")
