"""Surrogates of every method (GAN, 3D, in context) made one way for every caller: the
engine and the makers; the naive baselines; whole photos anonymised."""
