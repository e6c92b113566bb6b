"""Shared GAN building blocks that plugins compose: networks, losses, data sets, metrics, pools, recipes.

Neither the engine nor the CLI imports this package. Each module is imported on its own; this ``__init__``
imports nothing, so option modules stay torch-free.
"""
