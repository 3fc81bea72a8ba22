"""Performance properties of the transformer families that hold without a clock (issue 9).

Timings live in bench/bench_transformers.py; these tests check what makes them possible:
generation does no per-token work beyond the KV cache, a static-cache generation compiles once and then
replays (no recompilation per step), and an sdpa forward's largest tensor grows linearly with the length
(eager's attention scores grow quadratically, which shows the probe can tell the two apart).
"""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import CompileConfig, DynamicCache

from tests.common import HIDDEN, INTERMEDIATE, VOCAB, ids_tensor
from w2vformer.modeling.attention import CACHE_NAME, GrowableLayer, pick_cache
from w2vformer.modeling.configuration_decoder import DecoderConfig
from w2vformer.modeling.configuration_encoder import EncoderConfig
from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig
from w2vformer.modeling.modeling_decoder import DecoderForCausalLM
from w2vformer.modeling.modeling_encoder import EncoderModel
from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration

SIZES = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=4, intermediate_size=INTERMEDIATE,
             pad_token_id=0, bos_token_id=2, eos_token_id=3)
GREEDY = dict(do_sample=False, num_beams=1, pad_token_id=0)


def tiny_decoder(**kwargs) -> DecoderForCausalLM:
    torch.manual_seed(0)
    return DecoderForCausalLM(DecoderConfig(num_hidden_layers=2, max_position_embeddings=1024,
                                            **SIZES, **kwargs)).eval()


def tiny_seq2seq(**kwargs) -> Seq2SeqForConditionalGeneration:
    torch.manual_seed(0)
    return Seq2SeqForConditionalGeneration(Seq2SeqConfig(encoder_layers=2, decoder_layers=3,
                                                         decoder_start_token_id=2, **SIZES, **kwargs)).eval()


def tiny_encoder(**kwargs) -> EncoderModel:
    torch.manual_seed(0)
    return EncoderModel(EncoderConfig(num_hidden_layers=2, max_position_embeddings=1024, **SIZES, **kwargs)).eval()


def record_calls(module, log: list, ids_key: str):
    """Log, for every call of ``module``: the shape of its token ids, and the cache length before and after."""

    def before(mod, args, kwargs):
        ids = kwargs.get(ids_key, args[0] if args else None)
        cache = pick_cache(kwargs.get("cache"), kwargs.get("past_key_values"))  # 5.23 passes past_key_values
        log.append({"ids": tuple(ids.shape), "cached_before": int(cache.get_seq_length()) if cache is not None else 0})

    def after(mod, args, kwargs, output):
        # int(): a StaticCache returns its length counter itself, a tensor that later steps increment in place
        log[-1]["cached_after"] = int(getattr(output, CACHE_NAME).get_seq_length())

    return [module.register_forward_pre_hook(before, with_kwargs=True),
            module.register_forward_hook(after, with_kwargs=True)]


def record_head_inputs(head, log: list):
    return head.register_forward_pre_hook(lambda mod, args: log.append(tuple(args[0].shape)))


# ------------------------------------------------------------------------------------ generation and the cache


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_decoder_generate_feeds_one_token_per_step(cache):
    """After the prompt, each step runs the stack on exactly one new token per sequence, the cache grows by
    one, and the head projects only the last position (never the whole prefix)."""
    model = tiny_decoder()
    batch, prompt, new = 3, 5, 6
    ids = ids_tensor((batch, prompt), low=4)
    stack, head = [], []
    hooks = [*record_calls(model.model, stack, "input_ids"), record_head_inputs(model.lm_head, head)]
    extra = {"cache_implementation": "static"} if cache == "static" else {}
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                         **GREEDY, **extra)
    for hook in hooks:
        hook.remove()
    assert out.shape == (batch, prompt + new)
    assert len(stack) == new  # the last token is sampled from the previous step's logits: no extra forward
    assert stack[0] == {"ids": (batch, prompt), "cached_before": 0, "cached_after": prompt}
    for step, call in enumerate(stack[1:]):
        assert call == {"ids": (batch, 1), "cached_before": prompt + step, "cached_after": prompt + step + 1}, step
    assert head == [(batch, 1, HIDDEN)] * new


def test_seq2seq_generate_encodes_once_and_feeds_one_token_per_step():
    """The encoder runs once; the decoder gets one new token per step with a self-attention cache growing by one
    (cross-attention keys and values are computed at the first step only: the k/v projections of the
    cross-attention run once per layer)."""
    model = tiny_seq2seq()
    batch, source, new = 2, 7, 5
    ids = ids_tensor((batch, source), low=4)
    encoder_calls, decoder_calls, head, cross_kv = [], [], [], []
    hooks = [model.model.encoder.register_forward_hook(lambda *args: encoder_calls.append(1)),
             record_head_inputs(model.lm_head, head)]

    def before(mod, args, kwargs):
        cache = pick_cache(kwargs.get("cache"), kwargs.get("past_key_values"))  # 5.23 passes past_key_values
        decoder_calls.append((tuple(kwargs["input_ids"].shape),
                              int(cache.self_attention_cache.get_seq_length()) if cache is not None else 0))

    hooks.append(model.model.decoder.register_forward_pre_hook(before, with_kwargs=True))
    for layer in model.model.decoder.layers:
        hooks.append(layer.encoder_attn.k_proj.register_forward_hook(lambda *args: cross_kv.append(1)))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, **GREEDY)
    for hook in hooks:
        hook.remove()
    assert out.shape == (batch, 1 + new)  # decoder_start_token + new tokens
    assert len(encoder_calls) == 1
    assert decoder_calls == [((batch, 1), step) for step in range(new)]
    assert len(cross_kv) == len(model.model.decoder.layers)
    assert head == [(batch, 1, HIDDEN)] * new


def python_calls(fn, code=None) -> int:
    """How many Python function calls ``fn()`` makes (only those of ``code``, a function's code object, if given)."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call" and (code is None or frame.f_code is code)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def parameter_objects_built(fn) -> int:
    """How many ``inspect.Parameter`` objects ``fn()`` creates (each signature built from code makes one per argument)."""
    return python_calls(fn, inspect.Parameter.__init__.__code__)


@pytest.mark.parametrize("family", ["decoder", "seq2seq"])
def test_auto_class_registration_adds_no_per_step_work(family, monkeypatch):
    """transformers' generate asks for forward's signature at every decoding step of a model registered for the
    Auto classes (a remote-code check for ``cache_position``), which every w2vformer model is; built from the code
    that costs ~40 us a token, so the class keeps it built: per new token, a registered model builds no more
    signature parameters (``inspect.Parameter`` objects) than the same model unregistered, as stock models are."""
    model = tiny_decoder() if family == "decoder" else tiny_seq2seq()
    ids = ids_tensor((2, 5), low=4)

    def per_six_tokens() -> int:
        built = [parameter_objects_built(lambda n=new: model.generate(ids, attention_mask=torch.ones_like(ids),
                                                                       max_new_tokens=n, min_new_tokens=n, **GREEDY))
                 for new in (2, 8)]
        return built[1] - built[0]

    assert model.is_remote_code()  # registered by `import w2vformer`, as every saved checkpoint is
    registered = per_six_tokens()
    monkeypatch.setattr(type(model), "_auto_class", None)
    assert not model.is_remote_code()
    assert registered == per_six_tokens(), "a registered model rebuilds forward's signature at every step"


class StepWork(TorchDispatchMode):
    """Records the tensor operators a call runs and how many elements they write (the outputs of operators
    that are not views; an in-place copy counts the elements it writes)."""

    def __init__(self):
        super().__init__()
        self.ops, self.written = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(str(func))
        if not func.is_view:
            self.written += sum(t.numel() for t in (out if isinstance(out, (tuple, list)) else (out,))
                                if isinstance(t, torch.Tensor))
        return out


def decoding_step_work(model, cached: int, batch: int = 2) -> dict:
    """Python calls, tensor operators and elements written by one decoding step with ``cached`` tokens in the
    dynamic cache, as ``generate`` runs it (one new token, an all-ones attention mask). The step before it runs
    first, so a cache that appends in place has already moved into its buffers."""
    ids = ids_tensor((batch, cached + 1), low=4, seed=cached)
    mask = torch.ones_like(ids)

    def cache_before_the_step():
        with torch.no_grad():
            cache = DynamicCache()
            model(input_ids=ids[:, : cached - 1], attention_mask=mask[:, : cached - 1], cache=cache, use_cache=True)
            model(input_ids=ids[:, cached - 1 : cached], attention_mask=mask[:, :cached], cache=cache, use_cache=True)
        return cache

    def step(cache):
        with torch.no_grad():
            model(input_ids=ids[:, -1:], attention_mask=mask, cache=cache, use_cache=True)

    cache = cache_before_the_step()
    calls = python_calls(lambda: step(cache))
    cache = cache_before_the_step()
    with StepWork() as work:
        step(cache)
    assert cache.get_seq_length() == cached + 1
    return {"python calls": calls, "operators": work.ops, "elements written": work.written}


def test_decoding_step_work_does_not_grow_with_the_cache(monkeypatch):
    """A decoding step with 301 tokens cached runs the same Python calls and tensor operators as one with 9
    cached. With the cache appending in place it writes one element more per cached token and sequence: the
    attention mask `(B, S)` that generate passes, converted to bool by transformers' mask builder, as in every
    transformers model; nothing of the cache is copied. Only attention's reads of the cached keys and values
    grow with the length. Concatenating (as transformers' ``DynamicLayer`` does, and ours below
    ``GrowableLayer.MIN_BYTES``) writes the whole cache again at every step, and the probe sees exactly that."""
    model = tiny_decoder()
    layers, batch, short, long_ = model.config.num_hidden_layers, 2, 9, 301
    mask_growth = batch * (long_ - short)
    cache_growth = layers * 2 * batch * HIDDEN * (long_ - short)  # keys and values of every layer
    for min_bytes, growth in ((0, mask_growth), (float("inf"), mask_growth + cache_growth)):
        monkeypatch.setattr(GrowableLayer, "MIN_BYTES", min_bytes)
        work = {n: decoding_step_work(model, n, batch) for n in (short, long_)}
        for key in ("python calls", "operators"):
            assert work[long_][key] == work[short][key], (min_bytes, key)
        assert work[long_]["elements written"] - work[short]["elements written"] == growth, min_bytes


# ------------------------------------------------------------------------------------ compile


@pytest.mark.parametrize("options", ["", "fused", "fused-in_out"])
def test_static_cache_generation_compiles_once(options):
    """generate with a static cache and a compile config runs the decoding steps through one compiled graph
    (fullgraph, no recompilation per step: the shapes do not change) and gives the uncompiled tokens; also with
    the stacked Q/K/V copy of ``fuse_qkv_projections()`` and with the weights of ``set_weight_layout("in_out")``."""
    model = tiny_decoder()
    if "fused" in options:
        model.fuse_qkv_projections()
    if "in_out" in options:
        model.set_weight_layout("in_out")
    ids = ids_tensor((2, 5), low=4)
    kwargs = dict(attention_mask=torch.ones_like(ids), max_new_tokens=6, min_new_tokens=6,
                  cache_implementation="static", **GREEDY)
    expected = model.generate(ids, disable_compile=True, **kwargs)
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    config = CompileConfig(backend=counting_backend, fullgraph=True, dynamic=False, mode="default")
    config._compile_all_devices = True  # transformers only auto-compiles on accelerators otherwise
    try:
        got = model.generate(ids, compile_config=config, **kwargs)
        assert torch.equal(got, expected)
        assert len(graphs) == 1, f"{len(graphs)} graphs for 5 decoding steps: a recompilation per step"
        # a second generation reuses the compiled step
        assert torch.equal(model.generate(ids, compile_config=config, **kwargs), expected)
        assert len(graphs) == 1
    finally:
        torch._dynamo.reset()


# ------------------------------------------------------------------------------------ memory in the length


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator produces."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


def largest_tensor(model, length: int, family: str) -> int:
    ids = ids_tensor((1, length), low=4)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if family == "seq2seq":
        inputs["decoder_input_ids"] = ids
    with torch.no_grad(), LargestTensor() as probe:
        model(**inputs)
    return probe.numel


@pytest.mark.parametrize("family", ["decoder", "encoder", "seq2seq"])
def test_sdpa_forward_memory_is_linear_in_length(family):
    """With sdpa (and an all-ones attention mask, as a tokenizer gives it) no tensor of size T x T is built:
    doubling the length doubles the largest tensor. Eager attention materialises the scores, so there the
    largest tensor grows four times: the probe tells linear from quadratic."""
    make = {"decoder": tiny_decoder, "encoder": tiny_encoder, "seq2seq": tiny_seq2seq}[family]
    short, long_ = 256, 512
    growth = {}
    for impl in ("sdpa", "eager"):
        model = make(attn_implementation=impl) if family != "seq2seq" else make()
        model.set_attn_implementation(impl)
        growth[impl] = largest_tensor(model, long_, family) / largest_tensor(model, short, family)
    assert growth["sdpa"] <= 2.05, f"sdpa: largest tensor grew x{growth['sdpa']:.2f} when the length doubled"
    assert growth["eager"] >= 3.5, f"eager: x{growth['eager']:.2f} (the probe should see the T x T scores)"
