"""w2vformer: from words to attention.

A tokenizer turns text into ids; Word2Vec (CBOW and skip-gram) learns the embedding matrix from raw
text; encoder-only, decoder-only and encoder-decoder transformers start from those vectors and learn,
through attention, how context corrects each word's dictionary meaning. Every model is a
``transformers`` model.

``import w2vformer`` registers every config and model class with the transformers Auto classes, so
``AutoModel.from_pretrained(folder)`` works on our checkpoints without ``trust_remote_code``. Public
names (``w2vformer.WordVectors``, ``w2vformer.DecoderForCausalLM``, ...) are imported on first use.

The registration needs transformers (hence torch: ~350 MB and seconds of imports). If transformers is already
imported, it happens at once; otherwise it happens right after transformers is first imported, by whatever
code imports it (``from transformers import AutoModel``, or any of our model classes). So the parts that need
neither (the Word2Vec fast path, the vector converters, ``w2vformer --help``) run without loading them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package). Each part adds its own names.
_EXPORTS: dict[str, str] = {
    "atomic_write": "._io",
    "atomic_dir": "._io",
    "Word2VecConfig": ".modeling.configuration_word2vec",
    "Word2VecModel": ".modeling.modeling_word2vec",
    "build_huffman_tree": ".modeling.modeling_word2vec",
    "WordVectors": ".keyedvectors",
    "Word2VecDataset": ".training.word2vec_data",
    "Word2VecCollator": ".training.word2vec_data",
    "count_tokens": ".training.word2vec_data",
    "word2vec_optimizer": ".training.word2vec_data",
    "word2vec_training_arguments": ".training.word2vec_data",
    "DecoderConfig": ".modeling.configuration_decoder",
    "DecoderModel": ".modeling.modeling_decoder",
    "DecoderForCausalLM": ".modeling.modeling_decoder",
    "Seq2SeqConfig": ".modeling.configuration_seq2seq",
    "Seq2SeqModel": ".modeling.modeling_seq2seq",
    "Seq2SeqForConditionalGeneration": ".modeling.modeling_seq2seq",
    "Seq2SeqGenerationPipeline": ".pipelines",
    "EncoderConfig": ".modeling.configuration_encoder",
    "EncoderModel": ".modeling.modeling_encoder",
    "EncoderForMaskedLM": ".modeling.modeling_encoder",
    "EncoderForSequenceClassification": ".modeling.modeling_encoder",
    "EncoderForTokenClassification": ".modeling.modeling_encoder",
    "init_embeddings_from_word2vec": ".conversion.embedding_init",
    "EmbeddingInitReport": ".conversion.embedding_init",
    "FreezeEmbeddingsCallback": ".conversion.embedding_init",
    "train_transformer": ".training.lm",
    "plot_attention": ".plotting",
    "plot_embeddings": ".plotting",
    "plot_loss_curves": ".plotting",
    "train_tokenizer": ".tokenization.trainer",
    "save_tokenizer": ".tokenization.trainer",
    "demo_corpus_path": ".tokenization.corpus",
    "iter_text_lines": ".tokenization.corpus",
    "VectorFormatError": ".conversion.word2vec_format",
    "read_vectors": ".conversion.vectors",
    "write_vectors": ".conversion.vectors",
    "detect_format": ".conversion.vectors",
    "convert_vectors": ".conversion.vectors",
    "load_word2vec_format": ".conversion.vectors",
    "save_word2vec_format": ".conversion.vectors",
    "vectors_to_checkpoint": ".conversion.vectors",
    "checkpoint_to_vectors": ".conversion.vectors",
    "from_gensim": ".conversion.gensim_compat",
    "to_gensim": ".conversion.gensim_compat",
    "gensim_to_checkpoint": ".conversion.gensim_compat",
    "convert_from_transformers": ".conversion.checkpoints",
    "convert_to_transformers": ".conversion.checkpoints",
    "fill_auto_map": ".hub",
    "write_model_card": ".hub",
    "push_to_hub": ".hub",
    "train_word2vec": ".training.word2vec",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'w2vformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def _register() -> None:
    from .hub import install_auto_map_hooks
    from .modeling import register_auto_classes

    register_auto_classes()
    # every save of a w2vformer config (hence of a model) lists all the Auto classes of its family in
    # auto_map, not only the class that was saved
    install_auto_map_hooks()

    from .pipelines import register_pipelines  # "seq2seq-generation" (transformers 5 dropped text2text)

    register_pipelines()


class _RegisterWhenTransformersLoads(importlib.abc.MetaPathFinder):
    """Runs ``_register()`` at the first safe moment after ``transformers`` is imported, then removes itself.

    It finds no module itself: for ``transformers`` and our own modules it takes the spec the other finders
    give and wraps the loader's ``exec_module`` (on that loader instance only) so that, once the module has
    run, ``_register_if_ready`` is called. Safe moment: transformers is loaded and none of our modules is
    half-imported (``from w2vformer.modeling.modeling_decoder import ...`` imports transformers from inside
    modeling_decoder; registering then would import modeling_decoder again, half-built).
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "transformers" and not fullname.startswith(__name__ + "."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_module_then_register(module):
            exec_module(module)
            _register_if_ready(finished=module.__name__)

        loader.exec_module = exec_module_then_register
        return spec


def _our_module_importing(finished: str) -> bool:
    """Whether one of our modules other than ``finished`` (which has just run, though importlib has not yet
    marked it done) is still being imported: registering imports the model modules, hub and pipelines."""
    prefix = __name__ + "."
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith(prefix) and name != finished
    )


_registered = False


def _register_if_ready(finished: str = "") -> None:
    global _registered
    if _registered or "transformers" not in sys.modules or _our_module_importing(finished):
        return
    _registered = True  # loaders wrapped before the hook was removed may still call in
    for finder in [f for f in sys.meta_path if isinstance(f, _RegisterWhenTransformersLoads)]:
        sys.meta_path.remove(finder)
    try:
        _register()
    except Exception as error:  # never break the user's import of transformers or of our modules
        warnings.warn(f"w2vformer could not register its models with transformers: {error!r}", stacklevel=2)


if "transformers" in sys.modules:
    _register()
elif not any(isinstance(finder, _RegisterWhenTransformersLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenTransformersLoads())
