"""The conditional BEGAN-CS generator: networks, training, sampling, latent walks, grids."""
