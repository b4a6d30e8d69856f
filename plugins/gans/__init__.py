"""The adversarial families: `gan` (Goodfellow et al. 2014), `dcgan` (Radford et al. 2016) and
`cgan` (Mirza and Osindero 2014).

They share one training step (Algorithm 1 of the GAN paper: k discriminator steps, then one
generator step; `common.adversarial_step`), one evaluation (FID and KID in the toolkit's offline
feature space, and for cgan the held-out classifier's accuracy on the conditioned class) and one
predict (sample grids from fixed seeds, linear and spherical latent interpolation, DCGAN's vector
arithmetic, a grid per class for cgan). Each family module holds only its networks, its config
defaults (the paper's) and its optimizers.
"""
