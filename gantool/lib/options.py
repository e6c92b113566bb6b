"""Option pieces that several tasks' option dataclasses share (torch-free: task cards import them)."""

from __future__ import annotations


def load_size_problems(load_size: int | None, crop: int) -> list[str]:
    """The shared check of tasks that resize images (``--load-size``) before a random ``--crop``."""
    if load_size is not None and load_size < crop:
        return [f"--load-size {load_size} is smaller than --crop {crop}"]
    return []
