"""Moving vectors and checkpoints in and out: word-vector file formats (word2vec binary/text, GloVe,
fastText, gensim) and the stock BERT, GPT-2 and BART checkpoints."""
