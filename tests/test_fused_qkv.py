"""``fuse_qkv_projections()``: Q, K and V of each self-attention in one matrix product for inference (issue 9).

The stacked matrix is a copy for speed; ``q_proj``, ``k_proj`` and ``v_proj`` stay the parameters and the saved
weights. These tests check that the fused model computes what the unfused one does (every family, every kernel,
generation with both caches; compiled generation is in tests/test_performance_properties.py) with fewer matrix
products, that checkpoints do not change, that training still reaches the three parameters, that the copy follows
the weights when they change (also in a compiled forward), and that hooked or wrapped (LoRA-style) projections
are never bypassed.
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from tests.common import BATCH, HIDDEN, INTERMEDIATE, SEQ, VOCAB, assert_close, ids_tensor, random_padding_mask
from w2vformer.modeling.attention import MultiHeadAttention
from w2vformer.modeling.configuration_decoder import DecoderConfig
from w2vformer.modeling.configuration_encoder import EncoderConfig
from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig
from w2vformer.modeling.modeling_decoder import DecoderForCausalLM
from w2vformer.modeling.modeling_encoder import EncoderForMaskedLM
from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration

SIZES = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=4, intermediate_size=INTERMEDIATE,
             pad_token_id=0, bos_token_id=2, eos_token_id=3)
GREEDY = dict(do_sample=False, num_beams=1, pad_token_id=0)


def make(family: str, **kwargs):
    torch.manual_seed(0)
    if family == "decoder":
        return DecoderForCausalLM(DecoderConfig(num_hidden_layers=2, max_position_embeddings=64, **SIZES, **kwargs))
    if family == "encoder":
        return EncoderForMaskedLM(EncoderConfig(num_hidden_layers=2, max_position_embeddings=64, **SIZES, **kwargs))
    return Seq2SeqForConditionalGeneration(Seq2SeqConfig(encoder_layers=2, decoder_layers=3, decoder_start_token_id=2,
                                                         **SIZES, **kwargs))


def inputs(family: str) -> dict:
    ids = ids_tensor((BATCH, SEQ), low=4)
    batch = {"input_ids": ids, "attention_mask": random_padding_mask(side="right")}
    if family == "seq2seq":
        batch["decoder_input_ids"] = ids_tensor((BATCH, SEQ - 2), low=4, seed=1)
    return batch


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


class MatrixProducts(TorchDispatchMode):
    """Counts the 2-D matrix products (``mm``/``addmm``: every Linear and the head; attention uses others)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm)
        return func(*args, **(kwargs or {}))


def products(model, batch) -> int:
    """How many matrix products one forward runs (no grad)."""
    with torch.no_grad(), MatrixProducts() as probe:
        model(**batch)
    return probe.count


def self_attentions(model) -> int:
    return sum(1 for name, _ in model.named_modules() if name.endswith("self_attn"))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family,extra", [
    ("decoder", {}),
    ("decoder", {"position_embedding_type": "rotary", "attention_bias": False}),
    ("encoder", {}),
    ("seq2seq", {}),
])
def test_fused_model_computes_the_same_logits(family, extra, attn):
    model = make(family, **extra).eval()
    model.set_attn_implementation(attn)
    batch = inputs(family)
    expected, three = logits(model, batch), products(model, batch)
    assert model.fuse_qkv_projections() is model
    assert_close(logits(model, batch), expected, atol=1e-5, msg=f"{family} {attn} fused")
    assert products(model, batch) == three - 2 * self_attentions(model), "the stacked product was not used"
    model.unfuse_qkv_projections()
    assert_close(logits(model, batch), expected, atol=1e-6, msg="unfused again")
    assert products(model, batch) == three
    assert not [n for n, _ in model.named_buffers() if "stacked" in n], "unfuse_qkv_projections left a copy behind"


def test_only_self_attention_is_fused_in_the_seq2seq_decoder():
    model = make("seq2seq").eval().fuse_qkv_projections()
    fused = {name for name, m in model.named_modules()
             if isinstance(m, MultiHeadAttention) and getattr(m, "stacked_qkv_weight", None) is not None}
    attentions = {name for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)}
    assert fused == {n for n in attentions if n.endswith("self_attn")} and len(fused) == 2 + 3
    assert not any(n.endswith("encoder_attn") for n in fused)
    weight = model.get_submodule("model.encoder.layers.1.self_attn").stacked_qkv_weight
    assert weight.shape == (3 * HIDDEN, HIDDEN)


def assert_same_generation(got, expected):
    """Same tokens and, step by step, the same logits (greedy tokens alone barely depend on a tiny model's
    attention)."""
    assert torch.equal(got.sequences, expected.sequences)
    for step, (a, b) in enumerate(zip(got.logits, expected.logits, strict=True)):
        assert_close(a, b, atol=1e-5, msg=f"step {step}")


def greedy(model, cache: str | None = None):
    """A greedy generation of 3 prompts with its per-step logits (decoder: 12 new tokens from 5; seq2seq: 10 from a
    source of 6), with the given cache implementation."""
    decoder = not model.config.is_encoder_decoder
    ids = ids_tensor((3, 5 if decoder else 6), low=4)
    new = 12 if decoder else 10
    return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                          cache_implementation=cache, return_dict_in_generate=True, output_logits=True, **GREEDY)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_fused_decoder_generates_the_same_tokens(cache):
    model = make("decoder").eval()
    assert_same_generation(greedy(model.fuse_qkv_projections(), cache), greedy(model.unfuse_qkv_projections(), cache))


def test_fused_seq2seq_generates_the_same_tokens():
    model = make("seq2seq").eval()
    assert_same_generation(greedy(model.fuse_qkv_projections()), greedy(model.unfuse_qkv_projections()))


def test_checkpoints_and_state_dict_do_not_change(tmp_path):
    model = make("decoder").eval()
    keys = list(model.state_dict())
    model.fuse_qkv_projections()
    assert list(model.state_dict()) == keys
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        saved = set(f.keys())
    assert not [k for k in saved if "stacked" in k]
    assert "model.layers.0.self_attn.q_proj.weight" in saved
    reloaded = DecoderForCausalLM.from_pretrained(tmp_path).eval()
    batch = inputs("decoder")
    assert_close(logits(reloaded, batch), logits(model, batch), atol=1e-5)


def test_training_uses_the_three_parameters_and_the_copy_follows_each_step():
    model = make("decoder")
    batch = inputs("decoder")
    three = products(model, batch)
    model.fuse_qkv_projections()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(2):
        model.train()
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        attn = model.model.layers[0].self_attn
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        fused = logits(model, batch)
        assert products(model, batch) == three - 2 * 2  # two self-attentions, one product each instead of three
        model.unfuse_qkv_projections()
        assert_close(fused, logits(model, batch), atol=1e-5, msg="fused after an optimizer step")
        model.fuse_qkv_projections()


def test_the_copy_follows_load_state_dict_and_dtype_changes():
    model = make("decoder").eval().fuse_qkv_projections()
    other = make("decoder", initializer_range=0.2).eval()
    batch = inputs("decoder")
    logits(model, batch)  # builds and uses the copy
    model.load_state_dict(other.state_dict())
    assert_close(logits(model, batch), logits(other, batch), atol=1e-5, msg="after load_state_dict")
    model.to(torch.float64)
    other.to(torch.float64)
    assert model.model.layers[0].self_attn.stacked_qkv_weight.dtype == torch.float64
    assert_close(logits(model, batch), logits(other, batch), atol=1e-10, msg="after .to(float64)")


def test_grad_enabled_inference_with_frozen_weights_uses_the_fused_product():
    model = make("encoder").eval().requires_grad_(False)
    batch = inputs("encoder")
    expected, three = logits(model, batch), products(model, batch)
    model.fuse_qkv_projections()
    with MatrixProducts() as probe:  # grad mode on, nothing to differentiate
        got = model(**batch).logits
    assert_close(got, expected, atol=1e-5)
    assert probe.count == three - 2 * 2


def test_a_compiled_forward_sees_trained_loaded_and_refused_weights():
    """A compiled graph cannot check the weights' versions; eval(), load_state_dict and a new
    fuse_qkv_projections() call rebuild the copy it reads."""
    model = make("decoder", initializer_range=0.2).eval().fuse_qkv_projections()
    batch = inputs("decoder")
    compiled = torch.compile(model.forward, backend="eager", fullgraph=True)

    def check(msg):
        with torch.no_grad():
            got = compiled(**batch).logits
        reference = make("decoder").eval()
        reference.load_state_dict(model.state_dict())
        assert_close(got, logits(reference, batch), atol=1e-5, msg=msg)

    torch._dynamo.reset()
    try:
        check("first call")
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        model.eval()
        check("after a training step and eval()")
        model.load_state_dict(make("decoder", initializer_range=0.3).state_dict())
        check("after load_state_dict")
        with torch.no_grad():
            model.model.layers[0].self_attn.k_proj.weight.mul_(3.0)
        model.fuse_qkv_projections()
        check("after an edit by hand and fuse_qkv_projections()")
    finally:
        torch._dynamo.reset()


class Adapter(nn.Linear):
    """A projection wrapped as PEFT's LoRA layers are: its own module around the same weight, adding a term."""

    def forward(self, x):
        return super().forward(x) + 0.5 * x


def test_hooked_or_wrapped_projections_run_their_own_product():
    model = make("decoder", initializer_range=0.2).eval()
    batch = inputs("decoder")
    plain = logits(model, batch)
    fused = products(model.fuse_qkv_projections(), batch)
    attn = model.model.layers[0].self_attn

    calls = []
    handle = attn.q_proj.register_forward_hook(lambda *args: calls.append(1))
    assert_close(logits(model, batch), plain, atol=1e-5)
    assert calls == [1], "a forward hook on q_proj did not run"
    assert products(model, batch) == fused + 2  # that layer runs its three products
    handle.remove()

    adapter = Adapter(HIDDEN, HIDDEN)
    adapter.load_state_dict(attn.v_proj.state_dict())
    attn.v_proj = adapter
    model.unfuse_qkv_projections()
    with_adapter = logits(model, batch)
    assert (with_adapter - plain).abs().max() > 1e-2  # the adapter changes the output
    assert_close(logits(model.fuse_qkv_projections(), batch), with_adapter, atol=1e-5, msg="wrapped v_proj, fused")
