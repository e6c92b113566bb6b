"""Task-agnostic engine services (tiled inference, ...).

Kept free of imports so that ``import gantool.engine`` stays cheap; import the submodules you need.
"""
