"""The conditional generator: the default Projection GAN (hinge loss, projection
discriminator) and the thesis's BEGAN-CS; networks, training, sampling, latent walks, grids."""
