"""Speed and memory of w2vformer's transformer families against the stock transformers models (issue 9).

    python bench/bench_transformers.py --quick                     # smoke run, < 2 minutes
    python bench/bench_transformers.py --output bench/results/transformers.md
    python bench/bench_transformers.py --device cuda --dtype bfloat16 --preset gpt2-small --peak-tflops 989 \
        --only train --sizes 1024 --train-tokens 16384     # MFU of a ~125M decoder at sequence 1024 (H100 SXM)

Each pair is our model and its stock equivalent (encoder: BERT, decoder: GPT-2, seq2seq: BART) with the same
widths, depths, heads and vocabulary; the stock model is built with a fixed seed and converted with our
converters (``conversion/{bert,gpt2,bart}.py``), and equal logits are asserted once before any timing.
Repetitions alternate ours/stock in the same process (the order flips every repetition) so that load from
other processes hits both alike; the ratio reported is the median of the per-repetition ratios ours/stock
(> 1: ours is faster / uses less memory).

Sections (``--only``):
    train     forward + backward + AdamW step, tokens/s, per sequence length and attention kernel; with
              ``--peak-tflops``, model FLOPs utilisation: the forward and backward FLOPs of the batch, counted by
              torch's FlopCounterMode (see ``train_flops``), per second, over the device's peak
    generate  greedy decoding with the KV cache (batch 1 and 8, 128 new tokens), tokens/s, ours as built and ours
              after ``fuse_qkv_projections()`` (one product for Q, K and V) and after that and
              ``set_weight_layout("in_out")`` (weights stored (in, out)), timed in the same rounds; the cost of
              a decoding step at step ~1000 against step ~10 (dynamic and static cache), what the extra time goes to
              (torch.profiler) and an estimate of the least it can be (attention alone over the cache read from
              memory); steps with ~4000 tokens cached; ours appending in place against ours concatenating at four
              lengths
    memory    peak memory of a training step and of generation; a long decoder forward (sdpa, no grad) in
              bytes/token, and eager's growth from 2048 to 4096 tokens (quadratic: x4) against sdpa's (x2).
              On CPU each measurement runs in a fresh process forked from a fork server that has torch
              imported (and a fixed glibc mmap threshold, so freed tensors leave the resident set), and reads
              ru_maxrss minus the resident set after the model is built and warmed up; on CUDA it is
              ``torch.cuda.max_memory_allocated`` minus the allocation after the warm-up.
    compile   torch.compile (inductor) speed-up of the decoder forward and of generation with a static cache
              (ours, ours fused, ours fused in_out, stock)
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import os
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

STOCK_NAMES = {"encoder": "BERT", "decoder": "GPT-2", "seq2seq": "BART"}
SECTIONS = ("train", "generate", "memory", "compile")
PRESETS = {  # hidden, layers, heads, vocab
    "small": dict(hidden=256, layers=4, heads=4, vocab=8000),
    "gpt2-small": dict(hidden=768, layers=12, heads=12, vocab=50257),
}
LONG_LENGTHS = (2048, 4096, 8192)  # long-input forward (decoder, no grad)
PROMPT, SOURCE = 16, 64  # decoder prompt / seq2seq source length for generation


# ----------------------------------------------------------------------------------------------- models


def stock_config(family: str, a, max_len: int, attention_dropout: float | None = None):
    """The stock model class (BertForMaskedLM / GPT2LMHeadModel / BartForConditionalGeneration) and its config
    (attention dropout: the class's default unless given)."""
    from transformers import (BartConfig, BartForConditionalGeneration, BertConfig, BertForMaskedLM, GPT2Config,
                              GPT2LMHeadModel)

    name = {"encoder": "attention_probs_dropout_prob", "decoder": "attn_pdrop", "seq2seq": "attention_dropout"}
    dropout = {} if attention_dropout is None else {name[family]: attention_dropout}

    if family == "encoder":
        return BertForMaskedLM, BertConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                                           num_attention_heads=a.heads, intermediate_size=4 * a.hidden,
                                           max_position_embeddings=max_len, **dropout)
    if family == "decoder":
        return GPT2LMHeadModel, GPT2Config(vocab_size=a.vocab, n_embd=a.hidden, n_layer=a.layers, n_head=a.heads,
                                           n_positions=max_len, bos_token_id=2, eos_token_id=3, pad_token_id=0,
                                           **dropout)
    depth = max(1, a.layers // 2)  # encoder and decoder stacks of layers // 2 each: the same total depth
    return BartForConditionalGeneration, BartConfig(
        vocab_size=a.vocab, d_model=a.hidden, encoder_layers=depth, decoder_layers=depth,
        encoder_attention_heads=a.heads, decoder_attention_heads=a.heads, encoder_ffn_dim=4 * a.hidden,
        decoder_ffn_dim=4 * a.hidden, max_position_embeddings=max_len, pad_token_id=0, bos_token_id=2,
        eos_token_id=3, decoder_start_token_id=2, forced_eos_token_id=None, forced_bos_token_id=None, **dropout)


def converter(family: str):
    """Our conversion module for the family (from_stock, config_from_stock)."""
    import importlib

    name = {"encoder": "bert", "decoder": "gpt2", "seq2seq": "bart"}[family]
    return importlib.import_module(f"w2vformer.conversion.{name}")


def our_class(family: str):
    from w2vformer.modeling.modeling_decoder import DecoderForCausalLM
    from w2vformer.modeling.modeling_encoder import EncoderForMaskedLM
    from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration

    return {"encoder": EncoderForMaskedLM, "decoder": DecoderForCausalLM,
            "seq2seq": Seq2SeqForConditionalGeneration}[family]


def stock_model(family: str, a, max_len: int, attention_dropout: float | None = None):
    """A stock model, seeded, in eval mode."""
    import torch

    cls, cfg = stock_config(family, a, max_len, attention_dropout)
    torch.manual_seed(0)
    return cls(cfg).eval()


def our_model_like(family: str, stock):
    """Our model converted from ``stock`` (same weights, dtype, attention kernel, mode)."""
    ours = converter(family).from_stock(stock)
    ours.set_attn_implementation(stock.config._attn_implementation)
    return ours.eval()


def make_pair(family: str, impl: str, a, max_len: int):
    """(ours, stock) on the device and dtype asked for, with equal logits checked once.

    Where the stock class cannot run ``impl`` (GPT-2 has no flex_attention), stock is None: ours runs ``impl``
    alone, and its logits are checked against the stock model's with sdpa. transformers' flex_attention has no
    attention dropout, so its pairs are built without it."""
    import torch

    stock = stock_model(family, a, max_len, attention_dropout=0.0 if impl == "flex_attention" else None)
    try:
        stock.set_attn_implementation(impl)
        stock_runs_impl = True
    except ValueError:
        stock.set_attn_implementation("sdpa")
        stock_runs_impl = False
    stock.to(device=a.device, dtype=a.torch_dtype)
    ours = our_model_like(family, stock).to(a.device)
    ours.set_attn_implementation(impl)
    batch = make_batch(family, 2, 32, a.vocab, a.device, labels=False)
    batch["attention_mask"][1, -5:] = 0  # right padding, so masks are exercised too (our models give left-padded
    # rows positions from the mask, the stock ones do not: a documented difference, not compared here)
    if family == "seq2seq":
        batch["decoder_input_ids"] = batch["input_ids"][:, :16].clone()
    with torch.no_grad():
        ours_logits, stock_logits = ours(**batch).logits, stock(**batch).logits
    atol = 1e-4 if a.torch_dtype == torch.float32 else 5e-2
    keep = batch["attention_mask"].bool() if family != "seq2seq" else slice(None)  # padded positions: not compared
    diff = (ours_logits.float() - stock_logits.float())[keep].abs().max().item()
    if diff > atol:
        raise AssertionError(f"{family}/{impl}: ours and stock logits differ by {diff:.3g} (> {atol}); "
                             f"the comparison would be meaningless")
    return ours, stock if stock_runs_impl else None


def make_batch(family: str, batch: int, length: int, vocab: int, device, labels: bool = True) -> dict:
    import torch

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (batch, length), generator=g).to(device)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if labels:
        out["labels"] = ids.clone() if family != "seq2seq" else torch.randint(5, vocab, (batch, length), generator=g
                                                                              ).to(device)
    return out


def train_flops(model, family: str, length: int, a) -> int:
    """FLOPs of the forward and backward of one training sequence of ``length`` tokens (seq2seq: ``length``
    source and ``length`` target tokens), counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Counted rather than estimated as 6 N per token: that estimate leaves out attention's ``QK^T`` and ``A V``
    (12 x layers x hidden x L per token: 15% on top of 6 N at GPT-2 small's shape and L = 1024), and for seq2seq,
    whose encoder and decoder weights each see only half of the tokens, it counts nearly twice the work. The
    count runs with eager attention, whose matrix products the counter sees on any device (it has no formula
    for the CPU sdpa kernel); the attention math, and so the model FLOPs, are the same for every kernel. The
    optimizer step is not counted (as in the usual MFU)."""
    from torch.utils.flop_counter import FlopCounterMode

    impl = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with FlopCounterMode(display=False) as counter:
            model(**make_batch(family, 1, length, a.vocab, a.device)).loss.backward()
    finally:
        model.set_attn_implementation(impl)
        model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


# ----------------------------------------------------------------------------------------------- timing


def sync(device: str):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Seconds of one call of ``fn``; its ``setup`` attribute, if any, is called first, off the clock."""
    getattr(fn, "setup", lambda: None)()
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(fn_ours, fn_stock, repeats: int, device: str, warmup: int = 1):
    """Median seconds of ours and stock and the median per-repetition ratio stock_time / ours_time."""
    for _ in range(warmup):
        timed(fn_ours, device), timed(fn_stock, device)
    times = {"ours": [], "stock": []}
    for r in range(repeats):
        order = (("ours", fn_ours), ("stock", fn_stock)) if r % 2 == 0 else (("stock", fn_stock), ("ours", fn_ours))
        for name, fn in order:
            times[name].append(timed(fn, device))
    ratio = statistics.median(s / o for o, s in zip(times["ours"], times["stock"]))
    return statistics.median(times["ours"]), statistics.median(times["stock"]), ratio


def train_fn(model, batch):
    import torch

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def generate_kwargs(family: str, new_tokens: int, **extra) -> dict:
    return dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
                pad_token_id=0, **extra)


def generation_inputs(family: str, batch: int, a) -> dict:
    length = PROMPT if family == "decoder" else SOURCE
    return make_batch(family, batch, length, a.vocab, a.device, labels=False)


# ----------------------------------------------------------------------------------------------- sections


def bench_train(a, rows):
    for family in a.families:
        for impl in a.attn.split(","):
            ours, stock = make_pair(family, impl, a, a.max_len)
            for length in a.sizes:
                batch_size = max(1, a.train_tokens // length)
                batch = make_batch(family, batch_size, length, a.vocab, a.device)
                tokens = batch_size * length * (2 if family == "seq2seq" else 1)
                if stock is None:  # the stock class has no such kernel: ours alone
                    step = train_fn(ours, batch)
                    timed(step, a.device)  # warm-up
                    t_o = statistics.median(timed(step, a.device) for _ in range(a.repeats))
                    stock_cell, ratio = f"n/a (no {impl} in {STOCK_NAMES[family]})", None
                else:
                    t_o, t_s, ratio = interleaved(train_fn(ours, batch), train_fn(stock, batch), a.repeats, a.device)
                    stock_cell = f"{tokens / t_s:,.0f} tok/s"
                extra = ""
                if a.peak_tflops:
                    mfu = batch_size * train_flops(ours, family, length, a) / t_o / (a.peak_tflops * 1e12)
                    extra = f" (MFU ours {100 * mfu:.1f}%)"
                no_dropout = " (no attention dropout)" if impl == "flex_attention" else ""
                rows.append(("train", f"{family} ({STOCK_NAMES[family]}) {impl}{no_dropout} L={length} B={batch_size}",
                             f"{tokens / t_o:,.0f} tok/s", stock_cell, ratio, extra))
                print_row(rows[-1])
            del ours, stock
            gc.collect()


# ours as built, and with the inference options of InferenceLayoutMixin: name -> (what the row says, how to apply)
VARIANTS = {
    "ours": ("", None),
    "ours fused": ("fuse_qkv_projections()", lambda m: m.fuse_qkv_projections()),
    "ours fused in_out": ("fuse_qkv_projections() + set_weight_layout('in_out')",
                          lambda m: m.fuse_qkv_projections().set_weight_layout("in_out")),
}


def inference_variants(ours) -> dict:
    """``ours`` and copies of it with each inference option of VARIANTS applied."""
    return {name: apply(copy.deepcopy(ours)) if apply else ours for name, (_, apply) in VARIANTS.items()}


def bench_generate(a, rows):
    import torch

    for family in [f for f in a.families if f != "encoder"]:
        ours, stock = make_pair(family, "sdpa", a, a.max_len)
        models = {"stock": stock, **inference_variants(ours)}
        for batch_size in (1, 8):
            inputs = generation_inputs(family, batch_size, a)
            kw = generate_kwargs(family, a.new_tokens)
            fns = {name: (lambda m=model: m.generate(**inputs, **kw)) for name, model in models.items()}
            with torch.no_grad():
                expected = fns["stock"]()
                same = {name: torch.equal(fns[name](), expected) for name in VARIANTS}
                times = rotation(fns, a.repeats, a.device)  # all of them in the same rounds
            tokens = batch_size * a.new_tokens
            t_s = statistics.median(times["stock"])
            for name, (how, _) in VARIANTS.items():
                ratio = statistics.median(s / o for o, s in zip(times[name], times["stock"]))
                rows.append(("generate", f"{family} ({STOCK_NAMES[family]}) greedy B={batch_size}, {a.new_tokens} new"
                             + (f", {how}" if how else "") + ("" if same[name] else " [generations differ]"),
                             f"{tokens / statistics.median(times[name]):,.0f} tok/s", f"{tokens / t_s:,.0f} tok/s",
                             ratio, ""))
                print_row(rows[-1])
        del ours, stock, models
        gc.collect()
    if "decoder" in a.families:
        bench_flatness(a, rows)


def decode_steps(model, cache_len: int, steps: int, a, static_len: int | None = None):
    """A function running ``steps`` decoding steps (one token, batch 1) after a prompt of ``cache_len`` tokens held
    in a dynamic cache, or in a static one of ``static_len`` slots. Every call starts from its own copy of the
    prefilled cache, made by ``run.setup`` off the clock, so the steps grow the cache as in a generation and every
    call sees the same lengths."""
    import torch
    from transformers import StaticCache

    from w2vformer.modeling.attention import CACHE_NAME  # `past_key_values` before transformers 5.24, then `cache`

    ids = make_batch("decoder", 1, cache_len + 1, a.vocab, a.device, labels=False)["input_ids"]
    cache = StaticCache(config=model.config, max_cache_len=static_len) if static_len else None
    with torch.no_grad():
        prefilled = getattr(model(input_ids=ids[:, :-1], use_cache=True, logits_to_keep=1, **{CACHE_NAME: cache}),
                            CACHE_NAME)
    token = ids[:, -1:]

    def mask(seen: int):  # ones for the tokens seen; a static cache's mask covers every slot
        m = torch.zeros(1, static_len or seen, dtype=torch.long, device=a.device)
        m[:, :seen] = 1
        return m

    masks = [mask(cache_len + i + 1) for i in range(steps)]
    positions = [torch.full((1, 1), cache_len + i, device=a.device) for i in range(steps)]
    state = {}

    def setup():
        state["cache"] = copy.deepcopy(prefilled)

    def run():
        with torch.no_grad():
            for mask, position in zip(masks, positions):
                model(input_ids=token, attention_mask=mask, position_ids=position, use_cache=True, logits_to_keep=1,
                      **{CACHE_NAME: state["cache"]})

    run.setup = setup
    return run


def bench_flatness(a, rows):
    """Decoding step cost at step ~1000 against step ~10 (decoder, batch 1), dynamic and static cache.

    Blocks of decoding steps on a cache holding ~10 and ~1000 tokens, interleaved (so that load drifting over
    the run hits both alike); the static cache has room for ~1000 + 64 tokens in both cases, as it would in
    one generation of that length.
    """
    ours, stock = make_pair("decoder", "sdpa", a, a.max_len)
    late, window = a.flat_steps, 20
    for cache, static_len in (("dynamic", None), ("static", PROMPT + late + 64)):
        result = {}
        for name, model in (("ours", ours), ("stock", stock)):
            t_early, t_late, late_over_early = interleaved(
                decode_steps(model, PROMPT + 10, window, a, static_len),
                decode_steps(model, PROMPT + late, window, a, static_len), max(a.repeats, 5), a.device)
            result[name] = (t_early / window, t_late / window, 1 / late_over_early)
        add_flatness_row(rows, f"{cache} cache", late, result)
        if cache == "dynamic":
            runs = {(name, when): decode_steps(model, PROMPT + n, window, a)
                    for name, model in (("ours", ours), ("stock", stock))
                    for when, n in (("early", 10), ("late", late))}
            add_costs_row(rows, late, op_costs(runs, window, max(a.repeats, 5), a.device))
            floor = attention_floor(a, PROMPT + 10, PROMPT + late, max(a.repeats, 5))
            cells = [f"+{1e6 * floor:,.0f} us: flatness ~{result[m][0] / (result[m][0] + floor):.2f}"
                     for m in ("ours", "stock")]
            rows.append(("generate", f"decoder step ~10 -> ~{late}, B=1: extra time of attention alone over "
                         f"{a.layers} layers' cached keys and values read from memory (what a step that reads "
                         f"them from memory cannot avoid) and the flatness that leaves", *cells, None, ""))
            print_row(rows[-1])
    # a long generation: steps with ~4x as many tokens cached, ours against stock (dynamic cache, as generate uses)
    long = PROMPT + 4 * late
    t_o, t_s, ratio = interleaved(decode_steps(ours, long, window, a), decode_steps(stock, long, window, a),
                                  max(a.repeats, 5), a.device)
    rows.append(("generate", f"decoder step with ~{long} tokens cached, B=1, dynamic cache",
                 f"{window / t_o:,.0f} tok/s", f"{window / t_s:,.0f} tok/s", ratio, ""))
    print_row(rows[-1])
    # the same model with its cache appending in place and concatenating, at several lengths: where appending in
    # place starts to pay is what GrowableLayer.MIN_BYTES is set from (0: always in place, inf: always cat)
    from w2vformer.modeling.attention import GrowableLayer

    default = GrowableLayer.MIN_BYTES
    try:
        for cached in sorted({PROMPT + 48, PROMPT + late // 4, PROMPT + late, long}):
            in_place, concatenating = decode_steps(ours, cached, window, a), decode_steps(ours, cached, window, a)
            setups = in_place.setup, concatenating.setup
            in_place.setup = lambda s=setups[0]: (setattr(GrowableLayer, "MIN_BYTES", 0), s())
            concatenating.setup = lambda s=setups[1]: (setattr(GrowableLayer, "MIN_BYTES", float("inf")), s())
            t_i, t_c, ratio = interleaved(in_place, concatenating, max(a.repeats, 5), a.device)
            key_bytes = cached * a.hidden * a.torch_dtype.itemsize
            rows.append(("generate", f"decoder step with ~{cached} tokens cached ({key_bytes / 1024:,.0f} KiB of keys "
                         f"a layer), B=1: ours appending in place (ours) against ours concatenating as "
                         f"DynamicLayer (stock column)", f"{window / t_i:,.0f} tok/s", f"{window / t_c:,.0f} tok/s",
                         ratio, ""))
            print_row(rows[-1])
    finally:
        GrowableLayer.MIN_BYTES = default


def add_flatness_row(rows, how: str, late: int, result: dict):
    cells = [f"{1 / e:,.0f} -> {1 / l:,.0f} tok/s ({f:.2f})" for e, l, f in (result["ours"], result["stock"])]
    flat = result["ours"][2]
    verdict = "yes" if flat >= 0.9 else "NO"
    rows.append(("generate", f"decoder step ~10 -> ~{late}, B=1, {how} (flat if >= 0.90: {verdict})",
                 cells[0], cells[1], flat / result["stock"][2], ""))
    print_row(rows[-1])


def attention_floor(a, early: int, late: int, repeats: int) -> float:
    """Seconds a decoding step that reads the cache from memory spends on attention with ``late`` tokens cached
    beyond what it spends with ``early``: ``scaled_dot_product_attention`` of one query over every layer's cached
    keys and values, and nothing else, with the caches flushed first (a 128 MiB write, more than the processor's
    last-level cache), as a step finds them after the weights of the whole model went through the cache. The least
    over ``repeats`` rounds of each: load from elsewhere only ever adds time. An estimate, not a bound: a real step
    may still find part of the cache in the processor's last-level cache."""
    import torch
    import torch.nn.functional as F

    head_dim = a.hidden // a.heads
    query = torch.randn(1, a.heads, 1, head_dim, device=a.device, dtype=a.torch_dtype)
    flush = torch.zeros(32 << 20, device=a.device)
    times = {}
    for length in (early, late):
        cached = [(torch.randn(1, a.heads, length, head_dim, device=a.device, dtype=a.torch_dtype),
                   torch.randn(1, a.heads, length, head_dim, device=a.device, dtype=a.torch_dtype))
                  for _ in range(a.layers)]
        samples = []
        for _ in range(repeats + 1):
            flush.add_(1.0)
            sync(a.device)
            t0 = time.perf_counter()
            for keys, values in cached:
                F.scaled_dot_product_attention(query, keys, values)
            sync(a.device)
            samples.append(time.perf_counter() - t0)
        times[length] = min(samples[1:])
    return times[late] - times[early]


def op_costs(runs: dict, steps: int, repeats: int, device: str) -> dict:
    """Microseconds per decoding step under ``torch.profiler``: the wall clock, and the self time (the operator's
    own work, not what it calls; on CUDA, the device time of the kernels it launched) of attention's kernel, of
    ``aten::cat`` (the cache's concatenation) and of the matrix products (``addmm``, ``mm``: the linear layers and
    the head). For each of ``runs`` ({name: run}, set up off the clock), the least over ``repeats`` rounds (load
    from elsewhere only ever adds time), the runs taking turns within a round after one unrecorded warm-up round."""
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "99")  # else kineto logs every profiler start and stop

    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    samples = {name: {"wall": [], "attention": [], "cat": [], "matmul": []} for name in runs}
    for r in range(repeats + 1):
        for name, run in runs.items():
            run.setup()
            with profile(activities=activities) as prof:
                t0 = time.perf_counter()
                run()
                sync(device)
                wall = time.perf_counter() - t0
            own = {e.key: e.self_device_time_total if cuda else e.self_cpu_time_total for e in prof.key_averages()}
            if r:
                samples[name]["wall"].append(1e6 * wall / steps)
                samples[name]["attention"].append(sum(t for k, t in own.items() if k.startswith("aten::")
                                                      and ("scaled_dot_product" in k or "flash" in k)) / steps)
                samples[name]["cat"].append(own.get("aten::cat", 0.0) / steps)
                samples[name]["matmul"].append((own.get("aten::addmm", 0.0) + own.get("aten::mm", 0.0)) / steps)
    return {name: {k: min(v) for k, v in got.items()} for name, got in samples.items()}


def add_costs_row(rows, late: int, costs: dict):
    """Where the extra time of a step at ~``late`` tokens cached goes, against a step at ~10, all measured under
    the profiler (its overhead is the same at both lengths: the steps run the same operators). The matrix
    products do the same work at both lengths: what they gain is the time their weights take to come back into
    the processor's cache after the cached keys and values went through it."""
    cells = []
    for name in ("ours", "stock"):
        extra = {k: costs[name, "late"][k] - costs[name, "early"][k] for k in ("attention", "cat", "matmul")}
        wall = costs[name, "late"]["wall"] - costs[name, "early"]["wall"]
        cells.append(f"+{wall:,.0f} us: attention {extra['attention']:+,.0f}, cat {extra['cat']:+,.0f}, "
                     f"matmul {extra['matmul']:+,.0f}, rest {wall - sum(extra.values()):+,.0f}")
    rows.append(("generate", f"decoder step ~10 -> ~{late}, B=1, dynamic cache: what a step's extra time is spent "
                 f"on (operators: torch.profiler self time)", cells[0], cells[1], None, ""))
    print_row(rows[-1])


def rotation(fns: dict, repeats: int, device: str) -> dict:
    """Seconds of every function over ``repeats`` rounds, each round calling all of them once (the order reversed
    every other round), so that load drifting over the run hits each alike. Returns {name: [seconds per round]}."""
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            sync(device)
            t0 = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def compile_row(rows, workload: str, times: dict, compile_s: dict, same: dict | None = None):
    """One row: each model's speed-up of compiled over uncompiled, and ours/stock of the compiled runs (medians of
    the per-round ratios: all four variants are timed in the same rounds)."""
    speedup = {m: statistics.median(e / c for e, c in zip(times[m, "eager"], times[m, "compiled"]))
               for m in ("ours", "stock")}
    ratio = statistics.median(s / o for o, s in zip(times["ours", "compiled"], times["stock", "compiled"]))
    cells = [f"x{speedup[m]:.2f} (compile {compile_s[m]:.0f} s){'' if same is None or same[m] else ' [differs]'}"
             for m in ("ours", "stock")]
    rows.append(("compile", workload, cells[0], cells[1], ratio, ""))
    print_row(rows[-1])


def variant_compile_rows(rows, workload: str, times: dict, compile_s: dict, same: dict | None = None):
    """One row per inference variant of ours (fused; fused and in_out), compiled, against compiled stock (the same
    rounds)."""
    for name, (how, apply) in VARIANTS.items():
        if apply is None:  # (ours as built has its own row)
            continue
        speedup = statistics.median(e / c for e, c in zip(times[name, "eager"], times[name, "compiled"]))
        ratio = statistics.median(s / o for o, s in zip(times[name, "compiled"], times["stock", "compiled"]))
        differs = "" if same is None or same[name] else " [differs]"
        rows.append(("compile", f"{workload}, ours with {how}: compiled over uncompiled; ratio: compiled",
                     f"x{speedup:.2f} (compile {compile_s[name]:.0f} s){differs}", "(as above)", ratio, ""))
        print_row(rows[-1])


def bench_compile(a, rows):
    """torch.compile (inductor) of the decoder: the forward, and generation with a static cache.

    Ours and stock, compiled and not, are timed in the same interleaved rounds; the ratio column compares the
    compiled runs (ours/stock speed), the cells give each model's speed-up over its own uncompiled run.
    """
    import torch
    from transformers import CompileConfig

    ours, stock = make_pair("decoder", "sdpa", a, a.max_len)
    models = {"stock": stock, **inference_variants(ours)}
    batch = make_batch("decoder", 4, 128, a.vocab, a.device, labels=False)
    fns, compile_s = {}, {}
    try:
        with torch.no_grad():
            for name, model in models.items():
                compiled = torch.compile(model.forward, dynamic=False)
                t0 = time.perf_counter()
                compiled(**batch)
                compile_s[name] = time.perf_counter() - t0
                fns[name, "eager"] = lambda m=model: m(**batch)
                fns[name, "compiled"] = lambda c=compiled: c(**batch)
            for fn in fns.values():  # warm-up
                fn()
            times = rotation(fns, a.repeats, a.device)
    except Exception as exc:  # inductor needs a working C++ compiler
        rows.append(("compile", f"decoder forward: torch.compile failed here ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0][:120]})", "-", "-", float("nan"), ""))
        print_row(rows[-1])
        return
    compile_row(rows, "decoder forward B=4 L=128, no grad: speed-up of torch.compile over eager; ratio: compiled",
                times, compile_s)
    variant_compile_rows(rows, "decoder forward B=4 L=128, no grad", times, compile_s)

    new = min(a.new_tokens, 64)
    inputs = generation_inputs("decoder", 1, a)
    compile_config = CompileConfig(backend="inductor", mode="default", fullgraph=False, dynamic=False)
    compile_config._compile_all_devices = True  # transformers auto-compiles only on accelerators otherwise
    plain = generate_kwargs("decoder", new, cache_implementation="static", disable_compile=True)
    fast = generate_kwargs("decoder", new, cache_implementation="static", compile_config=compile_config)
    fns, compile_s, same = {}, {}, {}
    try:
        for name, model in models.items():
            expected = model.generate(**inputs, **plain)
            t0 = time.perf_counter()
            got = model.generate(**inputs, **fast)  # first call compiles
            compile_s[name] = time.perf_counter() - t0
            same[name] = torch.equal(expected, got)
            fns[name, "eager"] = lambda m=model: m.generate(**inputs, **plain)
            fns[name, "compiled"] = lambda m=model: m.generate(**inputs, **fast)
        for fn in fns.values():  # warm-up
            fn()
        times = rotation(fns, a.repeats, a.device)
    except Exception as exc:
        rows.append(("compile", f"decoder generate, static cache: compile failed here ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0][:120]})", "-", "-", float("nan"), ""))
        print_row(rows[-1])
        return
    compile_row(rows, f"decoder generate B=1, {new} new, static cache: compiled over uncompiled; ratio: compiled",
                times, compile_s, same)
    variant_compile_rows(rows, f"decoder generate B=1, {new} new, static cache", times, compile_s, same)


# ----------------------------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_worker(task: tuple, a) -> tuple[int, bool]:
    """Runs in a fresh process: build one model (ours is built from the converted config, so that no second
    model ever exists in the process), warm up on a tiny input (lazy imports, first-touch pages, optimizer
    state), then run the measured workload.

    Returns:
        (peak bytes above the resident set (CPU) or allocation (CUDA) after the warm-up, exact): exact is False
        when the workload did not raise the process's peak (an earlier peak was higher: the figure is an upper
        bound).
    """
    import torch

    torch.set_num_threads(a.threads)
    kind, family, which, impl, size = task
    cls, cfg = stock_config(family, a, a.max_len)
    torch.manual_seed(0)
    model = cls(cfg) if which == "stock" else our_class(family)(converter(family).config_from_stock(cfg))
    model.set_attn_implementation(impl)
    model.to(device=a.device, dtype=a.torch_dtype).eval()

    def workload(size: int, tokens: int, new_tokens: int):
        if kind == "train":
            step(make_batch(family, max(1, a.train_tokens // tokens), tokens, a.vocab, a.device))
        elif kind in ("generate", "generate-long"):
            with torch.no_grad():
                model.generate(**generation_inputs(family, size, a), **generate_kwargs(family, new_tokens))
        else:  # long forward, batch 1, no padding mask
            ids = make_batch(family, 1, tokens, a.vocab, a.device, labels=False)["input_ids"]
            with torch.no_grad():
                model(input_ids=ids, use_cache=False, logits_to_keep=1)

    if kind == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(batch):
            model(**batch).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    workload(1, 8, 2)  # warm-up
    gc.collect()
    new_tokens = a.flat_steps if kind == "generate-long" else a.new_tokens
    if a.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        workload(size, size, new_tokens)
        return torch.cuda.max_memory_allocated() - base, True
    base = _rss_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    workload(size, size, new_tokens)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return peak - base, peak > before


class MemoryRunner:
    """Fresh process per measurement: forked from a fork server with torch and transformers imported."""

    def __init__(self, a):
        import multiprocessing as mp

        self.a = a
        self.ctx = None
        if a.device == "cpu":
            # glibc would otherwise raise its mmap threshold as big blocks are freed and keep later ones in the
            # heap, where a freed block stays resident: with a fixed threshold every tensor above 128 KiB is
            # mmapped and unmapped on free, so the resident set follows the live tensors (read at fork server start)
            os.environ["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
            self.ctx = mp.get_context("forkserver")
            self.ctx.set_forkserver_preload([
                "torch", "transformers", "transformers.models.bert.modeling_bert",
                "transformers.models.gpt2.modeling_gpt2", "transformers.models.bart.modeling_bart",
                "transformers.generation.utils", "w2vformer.conversion.bert", "w2vformer.conversion.gpt2",
                "w2vformer.conversion.bart", "w2vformer.modeling.modeling_encoder",
                "w2vformer.modeling.modeling_decoder", "w2vformer.modeling.modeling_seq2seq"])

    def __call__(self, task) -> tuple[int, bool]:
        if self.ctx is None:  # CUDA: max_memory_allocated can be reset, no new process needed
            return memory_worker(task, self.a)
        with ProcessPoolExecutor(max_workers=1, mp_context=self.ctx) as pool:
            return pool.submit(memory_worker, task, self.a).result()

    def pair(self, kind, family, impl, size):
        """(ours, stock) peaks, interleaved over repeats, medians; and whether every figure is exact."""
        peaks = {"ours": [], "stock": []}
        exact = True
        for r in range(self.a.memory_repeats):
            for which in ("ours", "stock") if r % 2 == 0 else ("stock", "ours"):
                peak, ok = self((kind, family, which, impl, size))
                peaks[which].append(peak)
                exact &= ok
        return statistics.median(peaks["ours"]), statistics.median(peaks["stock"]), exact


def mark(exact: bool) -> str:
    return "" if exact else " (upper bound: an earlier peak was higher)"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def bench_memory(a, rows):
    run = MemoryRunner(a)
    for family in a.families:
        for length in a.memory_sizes:
            o, s, exact = run.pair("train", family, "sdpa", length)
            rows.append(("memory", f"{family} ({STOCK_NAMES[family]}) train step peak, sdpa L={length} "
                         f"B={max(1, a.train_tokens // length)}", mib(o), mib(s), s / o, mark(exact)))
            print_row(rows[-1])
    for family in [f for f in a.families if f != "encoder"]:
        for batch_size in (1, 8):
            o, s, exact = run.pair("generate", family, "sdpa", batch_size)
            rows.append(("memory", f"{family} ({STOCK_NAMES[family]}) generate peak, B={batch_size}, "
                         f"{a.new_tokens} new", mib(o), mib(s), s / o, mark(exact)))
            print_row(rows[-1])
    if "decoder" in a.families:  # a long generation: the cache dominates (ours keeps spare room in it)
        o, s, exact = run.pair("generate-long", "decoder", "sdpa", 1)
        rows.append(("memory", f"decoder (GPT-2) generate peak, B=1, {a.flat_steps} new", mib(o), mib(s), s / o,
                     mark(exact)))
        print_row(rows[-1])
    if "decoder" not in a.families:
        return
    peaks = {}
    for impl, lengths in (("sdpa", a.long_lengths), ("eager", a.long_lengths[:2])):
        for length in lengths:
            o, s, exact = run.pair("long", "decoder", impl, length)
            peaks[impl, length] = o, s
            rows.append(("memory", f"decoder forward, no grad, B=1, {impl} L={length}: bytes/token",
                         f"{o / length:,.0f} B/tok", f"{s / length:,.0f} B/tok", s / o, mark(exact)))
            print_row(rows[-1])
    short, long_ = a.long_lengths[0], a.long_lengths[1]
    for impl in ("eager", "sdpa"):
        growth = [peaks[impl, long_][i] / peaks[impl, short][i] for i in (0, 1)]
        rows.append(("memory", f"decoder forward {impl}: peak growth {short} -> {long_} tokens "
                     f"(x2 linear, x4 quadratic)", f"x{growth[0]:.2f}", f"x{growth[1]:.2f}",
                     growth[1] / growth[0], ""))
        print_row(rows[-1])
    if len(a.long_lengths) > 2:
        last = a.long_lengths[-1]
        per_tok = [peaks["sdpa", last][i] / last / (peaks["sdpa", short][i] / short) for i in (0, 1)]
        rows.append(("memory", f"decoder forward sdpa: bytes/token at {last} over bytes/token at {short} "
                     f"(linear bound: <= 1.5)", f"{per_tok[0]:.2f}", f"{per_tok[1]:.2f}", per_tok[1] / per_tok[0], ""))
        print_row(rows[-1])


# ----------------------------------------------------------------------------------------------- report


HEADER = ("| section | workload | ours | stock | ours/stock |", "|---|---|---|---|---|")


def format_row(row) -> str:
    section, workload, ours, stock, ratio, extra = row
    return f"| {section} | {workload}{extra} | {ours} | {stock} | {'n/a' if ratio is None else f'{ratio:.2f}'} |"


def print_row(row):
    print(format_row(row), flush=True)


def machine_info(a) -> list[str]:
    import torch
    import transformers

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: {cpu}; {len(os.sched_getaffinity(0))} usable cores; torch threads {a.threads}; "
        f"load average at start {os.getloadavg()[0]:.1f}",
        f"- python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
        f"- device {a.device}, dtype {a.dtype}; model: hidden {a.hidden}, {a.layers} layers (seq2seq: "
        f"{max(1, a.layers // 2)} + {max(1, a.layers // 2)}), {a.heads} heads, intermediate {4 * a.hidden}, "
        f"vocab {a.vocab}",
        f"- repeats {a.repeats} (memory {a.memory_repeats}); training batch = max(1, {a.train_tokens} // L) "
        f"sequences; seq2seq counts source + target tokens",
    ]
    if a.device == "cuda":
        lines.insert(2, f"- GPU: {torch.cuda.get_device_name()}")
    return lines


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats: a smoke run in < 2 minutes")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--sizes", default=None, help="training sequence lengths, comma separated (default 128,512,2048)")
    p.add_argument("--only", default=None, help=f"comma separated subset of {','.join(SECTIONS)} (default: all; "
                                                 f"with --quick all but compile, which takes minutes to compile)")
    p.add_argument("--families", default="encoder,decoder,seq2seq")
    p.add_argument("--attn", default="eager,sdpa",
                   help="attention kernels of the training section, comma separated: eager, sdpa, flex_attention "
                   "(training with flex needs a GPU: torch has no flex backward on CPU)")  # fmt: skip
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--vocab", type=int)
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per model (default 5, quick 2)")
    p.add_argument("--memory-repeats", type=int, default=1)
    p.add_argument("--train-tokens", type=int, default=512, help="tokens per training batch (B = this // L)")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: 1 on CPU, where the cores are shared and idle OpenMP threads "
                        "spinning for a busy core cost several times the work; torch's choice on CUDA)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak dense TFLOP/s in the --dtype used (H100 SXM bf16: 989), for model FLOPs "
                        "utilisation: counted forward + backward FLOPs per second / peak")
    p.add_argument("--output", default=None, help="also write the table (markdown) to this file")
    a = p.parse_args(argv)
    for key, value in PRESETS[a.preset].items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.hidden % a.heads:
        p.error(f"--hidden {a.hidden} is not divisible by --heads {a.heads}")
    a.only = [s.strip() for s in (a.only or ",".join(SECTIONS[:-1] if a.quick else SECTIONS)).split(",") if s.strip()]
    bad = [s for s in a.only if s not in SECTIONS]
    if bad:
        p.error(f"--only got {bad}; choose from {', '.join(SECTIONS)}")
    a.families = [f.strip() for f in a.families.split(",") if f.strip()]
    if any(f not in STOCK_NAMES for f in a.families):
        p.error(f"--families got {a.families}; choose from {', '.join(STOCK_NAMES)}")
    default_sizes = "64,256" if a.quick else "128,512,2048"
    a.sizes = [int(s) for s in (a.sizes or default_sizes).split(",")]
    a.memory_sizes = a.sizes[-1:] if a.quick else a.sizes[-2:]
    a.long_lengths = (1024, 2048) if a.quick else LONG_LENGTHS
    a.flat_steps = 200 if a.quick else 1000
    if a.quick:
        a.new_tokens = min(a.new_tokens, 32)
    a.repeats = a.repeats or (2 if a.quick else 3)
    a.max_len = max([*a.sizes, *a.long_lengths, PROMPT + 4 * a.flat_steps + 64, SOURCE + a.new_tokens + 8])
    return a


def main(argv=None):
    a = parse_args(argv)
    import torch
    import transformers

    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available here")
    transformers.logging.set_verbosity_error()
    a.threads = a.threads or (1 if a.device == "cpu" else torch.get_num_threads())
    torch.set_num_threads(a.threads)
    a.torch_dtype = getattr(torch, a.dtype)
    info = machine_info(a)
    print("\n".join(info), flush=True)
    print("\n".join(HEADER), flush=True)
    rows = []
    start = time.perf_counter()
    # memory first: the fork server is started before this process runs any parallel torch work
    for section, fn in (("memory", bench_memory), ("train", bench_train), ("generate", bench_generate),
                        ("compile", bench_compile)):
        if section in a.only:
            with torch.no_grad() if section in ("generate",) else torch.enable_grad():
                fn(a, rows)
    elapsed = time.perf_counter() - start
    print(f"total {elapsed:.0f} s", flush=True)
    if a.output:
        from w2vformer._io import atomic_write

        order = {s: i for i, s in enumerate(SECTIONS)}
        rows.sort(key=lambda r: order[r[0]])
        text = "\n".join(["# w2vformer transformers vs stock transformers", "",
                          f"`python bench/bench_transformers.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
                          f" ({elapsed:.0f} s)", "", *info, "", *HEADER, *map(format_row, rows), ""])
        with atomic_write(a.output, "w") as f:
            f.write(text)
    return rows


if __name__ == "__main__":
    main()
