"""The `unet` family: Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical
Image Segmentation" (MICCAI 2015).

The paper's parts, one module each:

- `model`: the contracting/expanding network with skip concatenation, valid (the paper) or same
  padding, optional batch norm (fused transposed-conv + BN + ReLU up-convolutions), dropout at the end
  of the contracting path, He initialisation; its input/output geometry (572 -> 388 for depth 4).
- `weights`: the pixel-wise weight map w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2) that makes
  the network learn the thin borders between touching objects.
- `loss`: the weighted cross-entropy (the paper's energy) and a soft Dice loss.
- `tiling`: the overlap-tile strategy with mirror padding: seamless prediction on images of any size
  with memory bounded by the tile size and the tile batch.
"""
