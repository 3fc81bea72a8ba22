"""Pipelines transformers 5 no longer ships, registered when ``import w2vformer`` runs.

``"seq2seq-generation"`` replaces the removed ``text2text-generation`` (and ``summarization`` /
``translation``): text in, the encoder-decoder's generated text out.

    import w2vformer                        # registers the task
    from transformers import pipeline
    gen = pipeline("seq2seq-generation", model="path/to/seq2seq-checkpoint")
    gen("the cat sat on the mat", max_new_tokens=20, num_beams=4)
    # [{'generated_text': '...'}]

Any ``AutoModelForSeq2SeqLM`` model works (ours, BART, T5, ...). Generation parameters (``max_new_tokens``,
``num_beams``, ``do_sample``, ``num_return_sequences``, ``generation_config``, ...) are accepted when the
pipeline is built and on each call.
"""

from __future__ import annotations

from transformers import AutoModelForSeq2SeqLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

__all__ = ["SEQ2SEQ_TASK", "Seq2SeqGenerationPipeline", "register_pipelines"]

SEQ2SEQ_TASK = "seq2seq-generation"


class Seq2SeqGenerationPipeline(Pipeline):
    """Generate text from text with an encoder-decoder model (what ``text2text-generation`` did in transformers 4).

    Call it with a string or a list of strings.

    Args (of a call):
        inputs (`str` or `list[str]`): source texts.
        truncation (`bool`, *optional*): truncate sources to the tokenizer's `model_max_length`.
        return_tensors (`bool`, *optional*): return `generated_token_ids` instead of decoded text.
        clean_up_tokenization_spaces (`bool`, *optional*): passed to `tokenizer.decode`.
        **generate_kwargs: passed to `model.generate` (e.g. `max_new_tokens`, `num_beams`, `do_sample`).

    Returns:
        For one string: a list with one dict per returned sequence, `{"generated_text": str}` (or
        `{"generated_token_ids": torch.LongTensor}`); for a list of strings, one such list per string (flattened
        to one dict per string when each returns a single sequence, as `text2text-generation` did).
    """

    _pipeline_calls_generate = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, truncation=None, return_tensors=None, clean_up_tokenization_spaces=None, **generate_kwargs):
        preprocess_params = {} if truncation is None else {"truncation": truncation}
        postprocess_params = {}
        if return_tensors is not None:
            postprocess_params["return_tensors"] = return_tensors
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return preprocess_params, generate_kwargs, postprocess_params

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and all(isinstance(r, list) and len(r) == 1 for r in result):
            return [r[0] for r in result]
        return result

    def preprocess(self, inputs, truncation: bool = False):
        if not isinstance(inputs, str):
            raise ValueError(
                f"{SEQ2SEQ_TASK} takes a string or a list of strings, got {type(inputs).__name__}: {inputs!r}"
            )
        return self.tokenizer(inputs, truncation=truncation, return_tensors="pt")

    def _forward(self, model_inputs, **generate_kwargs):
        if hasattr(self, "_prepare_generate_kwargs"):  # transformers 5.2x: the call's parameters + the pipeline's
            generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        elif "generation_config" not in generate_kwargs:  # earlier 5.x: the config the pipeline built at init
            generate_kwargs["generation_config"] = self.generation_config
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)  # (num_return_sequences, T)
        return {"output_ids": output_ids}

    def postprocess(self, model_outputs, return_tensors: bool = False, clean_up_tokenization_spaces: bool = False):
        records = []
        for ids in model_outputs["output_ids"]:
            if return_tensors:
                records.append({"generated_token_ids": ids})
            else:
                text = self.tokenizer.decode(
                    ids, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
                )
                records.append({"generated_text": text})
        return records


def register_pipelines() -> None:
    """Register ``"seq2seq-generation"`` with transformers' ``pipeline()`` (idempotent)."""
    if SEQ2SEQ_TASK in PIPELINE_REGISTRY.supported_tasks:
        return
    PIPELINE_REGISTRY.register_pipeline(
        SEQ2SEQ_TASK, pipeline_class=Seq2SeqGenerationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
