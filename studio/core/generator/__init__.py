"""The conditional generator: the thesis's BEGAN-CS network, trained under either
objective (the default's hinge loss with a projection discriminator, or BEGAN-CS's
autoencoder discriminator); networks, objectives, training and its checkpoints, sampling,
latent walks, grids."""
