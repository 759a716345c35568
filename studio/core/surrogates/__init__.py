"""Surrogates of either method made one way for every caller: the engine and the makers."""
