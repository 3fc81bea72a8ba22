"""``w2vformer generate MODEL_DIR PROMPT``: text from a decoder or encoder-decoder checkpoint."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate text from a decoder or encoder-decoder folder",
                       description="Continue a prompt with a decoder, or generate a target from a source with an "
                                   "encoder-decoder (greedy by default; --sample or --beams to change).")
    p.add_argument("model", metavar="MODEL_DIR", help="a saved decoder or seq2seq model with its tokenizer")
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="one or more prompts / source texts")
    p.add_argument("--max-new-tokens", type=int, default=40, help="tokens to generate (40)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (1.0)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the k most likely tokens (50)")
    p.add_argument("--beams", type=int, default=1, help="beam search with this many beams (1 = off)")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling (0)")
    p.add_argument("--plain-layout", action="store_true",
                   help="keep the weights as loaded; by default a w2vformer model on CPU first runs "
                        "fuse_qkv_projections() and, if its weights are float32, set_weight_layout('in_out'), "
                        "which decode faster")
    p.set_defaults(func=_generate)


def generate_texts(model_dir, prompts, max_new_tokens=40, sample=False, temperature=1.0, top_k=50, beams=1, seed=0,
                   fast_layout=True):
    """Load ``model_dir`` through the Auto classes and return one generated text per prompt.

    With ``fast_layout`` (the default), a w2vformer model on CPU decodes with its inference options,
    ``fuse_qkv_projections()`` and, for float32 weights, ``set_weight_layout("in_out")``: the same numbers up to
    float rounding, in fewer and faster matrix products. A bfloat16 or float16 checkpoint (``from_pretrained``
    keeps the saved dtype) keeps ``nn.Linear``'s layout: on CPU, products with ``(in, out)`` weights in those
    dtypes ran 3-12x slower (bench/results/transformers.md)."""
    import json
    from pathlib import Path

    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    import w2vformer  # noqa: F401  (registers our model types with the Auto classes)

    config_path = Path(model_dir) / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"no model in {str(model_dir)!r} (config.json missing)")
    config = json.loads(config_path.read_text())
    seq2seq = bool(config.get("is_encoder_decoder"))
    if not seq2seq and config.get("model_type") not in ("w2vformer_decoder", "gpt2", "llama") and \
            "ForCausalLM" not in " ".join(config.get("architectures") or []):
        raise ValueError(f"{str(model_dir)!r} holds a {config.get('model_type')!r} model, which does not generate "
                         "text; use a decoder (train clm) or encoder-decoder (train seq2seq) folder")
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(model_dir, use_safetensors=True).eval()
    if fast_layout and hasattr(model, "set_weight_layout") and model.device.type == "cpu":
        model.fuse_qkv_projections()
        if model.dtype == torch.float32:
            model.set_weight_layout("in_out")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not seq2seq:
        tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    batch = tokenizer(list(prompts), return_tensors="pt", padding=True)
    batch.pop("token_type_ids", None)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature,
                             top_k=top_k, num_beams=beams, pad_token_id=tokenizer.pad_token_id)
    if not seq2seq:
        out = out[:, batch["input_ids"].shape[1]:]
    return tokenizer.batch_decode(out, skip_special_tokens=True)


def _generate(args) -> int:
    texts = generate_texts(args.model, args.prompts, args.max_new_tokens, args.sample, args.temperature,
                           args.top_k, args.beams, args.seed, fast_layout=not args.plain_layout)
    for prompt, text in zip(args.prompts, texts):
        print(f"{prompt} => {text.strip()}")
    return 0
