"""Network building blocks shared by several tasks (pix2pix, CycleGAN, ...).

Kept as plain ``torch.nn`` modules with no knowledge of gantool's engine, so any task can compose them:

- :mod:`gantool.lib.nets.layers`: ``make_norm`` (instance / batch / none), ``with_spectral_norm`` /
  ``fold_spectral_norm`` and the DCGAN-style ``init_weights``.
- :mod:`gantool.lib.nets.patchgan`: ``PatchDiscriminator``, the 70x70 PatchGAN critic of pix2pix and CycleGAN
  (and super-resolution's VGG-style layout), with spectral norm and feature outputs.
- :mod:`gantool.lib.nets.geometry` (torch-free): conv output sizes, minimum input sides, receptive fields,
  the U-Net depth for a crop; option dataclasses validate with it.
- :mod:`gantool.lib.nets.resnet`: ``ResnetGenerator``, CycleGAN's encoder / residual blocks / decoder generator.
- :mod:`gantool.lib.nets.unet`: ``UNet``, pix2pix's encoder-decoder with skip connections.

This package ``__init__`` imports nothing, so ``import gantool.lib.nets`` stays free of torch until a
submodule is actually used.
"""
