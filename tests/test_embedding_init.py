"""Word2Vec-initialised embeddings (issue 6): row matching, fallbacks, projections, tied heads, freezing."""

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from w2vformer.conversion.embedding_init import (
    FreezeEmbeddingsCallback,
    init_embeddings_from_word2vec,
    token_surface,
)

WORDPIECE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat", "##s", "Dog", "##ing", "run", "xyz", "q"]


class Vectors:
    """The two attributes WordVectors and gensim's KeyedVectors share."""

    def __init__(self, keys, vectors):
        self.index_to_key = list(keys)
        self.vectors = np.asarray(vectors, dtype=np.float32)


def wordpiece_tokenizer():
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(WORDPIECE_VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def tiny_bert(hidden=12, tie=True):
    config = BertConfig(vocab_size=len(WORDPIECE_VOCAB), hidden_size=hidden, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=17, max_position_embeddings=16,
                        tie_word_embeddings=tie)
    return BertForMaskedLM(config).eval()


def source_vectors(dim=12, seed=0):
    keys = ["the", "cat", "dog", "running", "run", "cats"]
    rng = np.random.default_rng(seed)
    return Vectors(keys, rng.standard_normal((len(keys), dim)))


def test_cross_vocabulary_matching_hits_expected_rows_and_fallbacks():
    model, tok, src = tiny_bert(), wordpiece_tokenizer(), source_vectors()
    before = model.get_input_embeddings().weight.detach().clone()
    report = init_embeddings_from_word2vec(model, tok, src, rescale=False, fallback="subword_mean")
    w = model.get_input_embeddings().weight.detach().numpy()
    ids = {t: i for i, t in enumerate(WORDPIECE_VOCAB)}
    key = {k: i for i, k in enumerate(src.index_to_key)}
    np.testing.assert_array_equal(w[ids["cat"]], src.vectors[key["cat"]])  # same string
    np.testing.assert_array_equal(w[ids["Dog"]], src.vectors[key["dog"]])  # after lowercasing
    np.testing.assert_array_equal(w[ids["run"]], src.vectors[key["run"]])
    np.testing.assert_allclose(w[ids["##ing"]], src.vectors[key["running"]], rtol=1e-6)  # only word with "ing"
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):  # special tokens keep their init
        np.testing.assert_array_equal(w[ids[special]], before[ids[special]].numpy())
    # "##s" (1 char) and "q" are too short for the subword rule, "xyz" is in no word: random rows
    assert (report.string, report.subword_mean, report.random, report.kept) == (3, 1, 3, 5)
    assert report.from_vectors == 4 and report.output_head == "tied"
    assert "3" in str(report) and "Dog" not in report.unmatched_examples


def test_random_fallback_uses_matched_mean_and_spread_and_keep_leaves_init():
    keys = [f"w{i}" for i in range(200)] + ["cat"]  # only "cat" matches; matched rows have mean 3
    tok, src = wordpiece_tokenizer(), Vectors(keys, np.random.default_rng(1).normal(3.0, 0.5, (201, 12)))
    model = tiny_bert()
    init_embeddings_from_word2vec(model, tok, src, rescale=False, fallback="random")
    xyz = model.get_input_embeddings().weight[WORDPIECE_VOCAB.index("xyz")].detach().numpy()
    assert abs(xyz.mean() - 3.0) < 1.5  # drawn around the matched row (mean 3), not around the init (0)
    model = tiny_bert()
    before = model.get_input_embeddings().weight.detach().clone()
    report = init_embeddings_from_word2vec(model, tok, src, rescale=False, fallback="keep")
    assert report.random == report.subword_mean == 0 and report.string == 1
    assert torch.equal(model.get_input_embeddings().weight[WORDPIECE_VOCAB.index("xyz")], before[10])


def test_rescale_matches_model_init_scale():
    model, tok = tiny_bert(), wordpiece_tokenizer()
    init_std = float(model.get_input_embeddings().weight.detach().std())
    src = Vectors(source_vectors().index_to_key, source_vectors().vectors * 50)
    report = init_embeddings_from_word2vec(model, tok, src, fallback="random")
    rows = [WORDPIECE_VOCAB.index(t) for t in ("cat", "Dog", "run")]
    got_std = float(model.get_input_embeddings().weight.detach()[rows].std())
    assert report.scale < 0.1 and 0.3 * init_std < got_std < 3 * init_std


@pytest.mark.parametrize("projection,dim,hidden", [("pca", 20, 12), ("pad", 8, 12), ("orthogonal", 8, 12)])
def test_projections_give_right_shape_and_geometry(projection, dim, hidden):
    tok, src = wordpiece_tokenizer(), source_vectors(dim=dim)
    model = tiny_bert(hidden=hidden)
    report = init_embeddings_from_word2vec(model, tok, src, projection=projection, rescale=False, fallback="keep")
    assert report.projection == projection and report.hidden_size == hidden
    w = model.get_input_embeddings().weight.detach().numpy()
    cat, run = w[WORDPIECE_VOCAB.index("cat")], w[WORDPIECE_VOCAB.index("run")]
    s_cat, s_run = src.vectors[1], src.vectors[4]
    if projection in ("pad", "orthogonal"):  # isometries: norms and inner products survive
        np.testing.assert_allclose(np.linalg.norm(cat), np.linalg.norm(s_cat), rtol=1e-5)
        np.testing.assert_allclose(cat @ run, s_cat @ s_run, rtol=1e-4, atol=1e-5)
        if projection == "pad":
            assert np.all(cat[dim:] == 0)
    else:  # PCA keeps the centred geometry along the top directions: distances shrink, never grow
        centred = src.vectors - src.vectors.mean(0)
        assert np.linalg.norm(cat - run) <= np.linalg.norm(centred[1] - centred[4]) + 1e-5
        assert np.linalg.norm(cat - run) > 0


def test_width_mismatch_without_projection_is_a_clear_error():
    with pytest.raises(ValueError, match=r"width 20 .* hidden_size is 12.*projection='pca'"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(), source_vectors(dim=20))
    with pytest.raises(ValueError, match="narrower"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(), source_vectors(dim=8), projection="pca")


def test_empty_overlap_and_nan_vectors_fail_clearly():
    with pytest.raises(ValueError, match="no token of the model's vocabulary"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(),
                                      Vectors(["zzz", "yyy"], np.ones((2, 12))))
    vec = source_vectors()
    vec.vectors[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf .*'dog'"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(), vec)
    with pytest.raises(ValueError, match="unknown fallback"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(), source_vectors(), fallback="zero")


def test_tied_heads_follow_and_untied_heads_stay():
    model, tok = tiny_bert(tie=True), wordpiece_tokenizer()
    init_embeddings_from_word2vec(model, tok, source_vectors())
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    untied = tiny_bert(tie=False)
    head_before = untied.get_output_embeddings().weight.detach().clone()
    report = init_embeddings_from_word2vec(untied, tok, source_vectors())
    assert report.output_head == "untouched"
    assert torch.equal(untied.get_output_embeddings().weight, head_before)
    with pytest.raises(ValueError, match="init_output=True needs a Word2Vec source"):
        init_embeddings_from_word2vec(untied, tok, source_vectors(), init_output=True)


def test_byte_level_bpe_surfaces_and_gpt2_tied_head():
    from tokenizers import trainers

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(["the cat sat on the mat", "the dog ran", "café au lait"] * 20,
                          trainers.BpeTrainer(vocab_size=300, special_tokens=["[PAD]"],
                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=t, pad_token="[PAD]")
    assert token_surface(tok, "Ġcat") == "cat"
    assert token_surface(tok, "##ing") == "ing" and token_surface(tok, "\u2581dog") == "dog"
    vocab = tok.get_vocab()
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=12, n_layer=1, n_head=2, n_positions=16))
    src = Vectors(["cat", "dog", "café", "the"], np.random.default_rng(0).standard_normal((4, 12)))
    report = init_embeddings_from_word2vec(model, tok, src, rescale=False, fallback="keep")
    w = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(w[vocab["Ġcat"]], src.vectors[0])
    assert report.output_head == "tied" and report.string >= 4


def test_freeze_callback_freezes_then_releases():
    from transformers import Trainer, TrainingArguments

    model, tok = tiny_bert(), wordpiece_tokenizer()
    data = [{"input_ids": [2, 5, 6, 9, 3], "labels": [-100, 5, -100, 9, -100]}] * 8
    emb = model.get_input_embeddings().weight
    snapshots = {}

    class Watch(FreezeEmbeddingsCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            snapshots[state.global_step] = model.get_input_embeddings().weight.detach().clone()
            return super().on_step_end(args, state, control, model=model, **kwargs)

    args = TrainingArguments(output_dir="/tmp/w2vf-freeze-test", per_device_train_batch_size=2, max_steps=4,
                             learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
                             logging_strategy="no", disable_tqdm=True)
    start = emb.detach().clone()
    Trainer(model=model, args=args, train_dataset=data, callbacks=[Watch(steps=2)]).train()
    assert torch.equal(snapshots[1], start) and torch.equal(snapshots[2], start)  # frozen for 2 steps
    assert not torch.equal(snapshots[4], start)  # then released
    assert emb.requires_grad
    with pytest.raises(ValueError, match="non-negative integer"):
        FreezeEmbeddingsCallback(steps=-1)


# --- our three families and real Word2Vec sources ------------------------------------------------------


def _word2vec_and_tokenizer(tok, dim, seed=0):
    """A Word2VecModel over ``tok``'s own vocabulary (as if trained on the transformer's tokenizer)."""
    from w2vformer.modeling.configuration_word2vec import Word2VecConfig
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    counts = torch.arange(len(tok), 0, -1, dtype=torch.long)
    counts[[tok.pad_token_id, tok.unk_token_id]] = 0  # never seen in training
    torch.manual_seed(seed)
    model = Word2VecModel(Word2VecConfig(vocab_size=len(tok), vector_size=dim), token_counts=counts)
    with torch.no_grad():
        model.in_embed.weight.normal_()
        model.out_embed.weight.normal_()
    return model


def _decoder_tokenizer():
    vocab = ["[PAD]", "[UNK]", "<s>", "</s>", "cat", "dog", "sat", "mat", "the", "ran"]
    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=t, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>",
                                   eos_token="</s>")


def test_same_tokenizer_copies_rows_exactly_and_untied_head_starts_from_output_matrix(tmp_path):
    from w2vformer.modeling.configuration_decoder import DecoderConfig
    from w2vformer.modeling.modeling_decoder import DecoderForCausalLM

    tok = _decoder_tokenizer()
    w2v = _word2vec_and_tokenizer(tok, dim=12)
    model = DecoderForCausalLM(DecoderConfig(vocab_size=len(tok), hidden_size=12, num_attention_heads=2,
                                             num_hidden_layers=1, intermediate_size=17, tie_word_embeddings=False))
    before = model.get_input_embeddings().weight.detach().clone()
    report = init_embeddings_from_word2vec(model, tok, w2v, source_tokenizer=tok, rescale=False)
    trained = [i for i in range(len(tok)) if i not in tok.all_special_ids]
    w, head = model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()
    assert torch.equal(w[trained], w2v.in_embed.weight[trained])  # exact, row for row
    assert torch.equal(head[trained], w2v.out_embed.weight[trained])  # the note's "decode back to a token"
    assert torch.equal(w[tok.all_special_ids], before[tok.all_special_ids])
    assert (report.exact, report.string, report.kept, report.output_head) == (6, 0, 4, "word2vec_output")

    # the same through a checkpoint folder (what --init-from-word2vec takes)
    w2v.save_pretrained(tmp_path / "w2v")
    tok.save_pretrained(tmp_path / "w2v")
    model2 = DecoderForCausalLM(model.config)
    report2 = init_embeddings_from_word2vec(model2, tok, tmp_path / "w2v", rescale=False)
    assert report2.exact == 6 and torch.equal(model2.get_input_embeddings().weight[trained], w[trained])


def test_seq2seq_shared_matrix_is_set_once_and_encoder_head_follows():
    from w2vformer.modeling.configuration_encoder import EncoderConfig
    from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig
    from w2vformer.modeling.modeling_encoder import EncoderForMaskedLM
    from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration

    tok = _decoder_tokenizer()
    w2v = _word2vec_and_tokenizer(tok, dim=8)
    s2s = Seq2SeqForConditionalGeneration(Seq2SeqConfig(vocab_size=len(tok), hidden_size=8, num_attention_heads=2,
                                                        encoder_layers=1, decoder_layers=1, intermediate_size=11))
    report = init_embeddings_from_word2vec(s2s, tok, w2v, source_tokenizer=tok, rescale=False)
    shared = s2s.get_input_embeddings().weight
    for m in (s2s.model.encoder.embed_tokens, s2s.model.decoder.embed_tokens, s2s.lm_head):
        assert m.weight is shared
    assert torch.equal(shared[5], w2v.in_embed.weight[5]) and report.output_head == "tied"

    enc = EncoderForMaskedLM(EncoderConfig(vocab_size=len(tok), hidden_size=8, num_attention_heads=2,
                                           num_hidden_layers=1, intermediate_size=11))
    init_embeddings_from_word2vec(enc, tok, w2v, source_tokenizer=tok, rescale=False)
    assert torch.equal(enc.get_output_embeddings().weight[5], w2v.in_embed.weight[5])


def test_word2vec_model_without_its_tokenizer_is_refused():
    tok = _decoder_tokenizer()
    with pytest.raises(ValueError, match="needs its tokenizer"):
        init_embeddings_from_word2vec(tiny_bert(), wordpiece_tokenizer(), _word2vec_and_tokenizer(tok, 12))
