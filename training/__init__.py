"""Training: Word2Vec (the fast path and the Trainer path) and the transformer families with Trainer."""
