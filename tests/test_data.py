"""Tests for gantool.data: layouts, direction, alignment of augmentations, unpaired sampling, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gantool.errors import InputError, UsageError
from gantool.image.io import Image, write_image
from gantool.lib.data import (
    ImageFolder,
    PairedImages,
    UnpairedImages,
    item_generator,
    list_images,
    random_crop,
    random_flip,
)


def codes(h: int, w: int, seed: int) -> np.ndarray:
    """Random 8-bit-exact RGB pixels, so PNG round trips are exact."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.float32) / 255


def save(path: Path, pixels: np.ndarray) -> Path:
    write_image(path, Image(pixels))
    return path


def tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1)


@pytest.fixture
def side_by_side(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    halves = []
    for i in range(3):
        a = codes(16, 20, i)
        halves.append(a)
        save(tmp_path / "pairs" / f"{i}.png", np.concatenate([a, 1 - a], axis=1))  # B = 1 - A, pixel-aligned
    return tmp_path / "pairs", halves


def test_side_by_side_layout_and_direction(side_by_side) -> None:
    root, halves = side_by_side
    data = PairedImages(root)
    assert data.layout == "side-by-side" and len(data) == 3
    item = data[1]
    assert set(item) == {"A", "B"} and item["A"].dtype == torch.float32
    torch.testing.assert_close(item["A"], tensor(halves[1]))
    torch.testing.assert_close(item["B"], tensor(1 - halves[1]))
    swapped = PairedImages(root, direction="BtoA")[1]
    torch.testing.assert_close(swapped["A"], item["B"])
    torch.testing.assert_close(swapped["B"], item["A"])


def test_crop_and_flip_keep_pairs_aligned(side_by_side) -> None:
    root, _ = side_by_side
    data = PairedImages(root, load_size=24, crop=(8, 12), flip=True, seed=5)
    for epoch in range(3):
        data.set_epoch(epoch)
        for i in range(len(data)):
            item = data[i]
            assert item["A"].shape == (3, 8, 12)
            torch.testing.assert_close(item["B"], 1 - item["A"], atol=1e-5, rtol=0)


def test_folders_layout_matches_names_across_extensions(tmp_path: Path) -> None:
    root = tmp_path / "paired"
    for name in ("x", "y"):
        a = codes(8, 8, ord(name))
        save(root / "A" / f"{name}.png", a)
        save(root / "B" / f"{name}.bmp", 1 - a)
    data = PairedImages(root)
    assert data.layout == "folders" and [p[0].stem for p in data.pairs] == ["x", "y"]
    torch.testing.assert_close(data[0]["B"], 1 - data[0]["A"])


def test_unmatched_folder_names_are_reported_together(tmp_path: Path) -> None:
    root = tmp_path / "paired"
    for name in ("1", "2", "3"):
        save(root / "A" / f"{name}.png", codes(4, 4, 0))
    for name in ("1", "4"):
        save(root / "B" / f"{name}.png", codes(4, 4, 0))
    with pytest.raises(InputError) as info:
        PairedImages(root, layout="folders")
    message = str(info.value)
    assert "2 file(s) in A/ have no partner in B/ (2, 3)" in message
    assert "1 file(s) in B/ have no partner in A/ (4)" in message


def test_errors_say_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="side-by-side A|B"):
        PairedImages(tmp_path / "empty")
    with pytest.raises(InputError, match="expected image files"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(UsageError):
        PairedImages(tmp_path / "empty", direction="sideways")  # type: ignore[arg-type]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    with pytest.raises(InputError, match="broken.png"):
        ImageFolder(tmp_path / "bad")[0]


def test_image_folder_crop_recursive_and_small_images(tmp_path: Path) -> None:
    save(tmp_path / "imgs" / "a.png", codes(20, 30, 0))
    save(tmp_path / "imgs" / "sub" / "b.png", codes(6, 10, 1))  # smaller than the crop: enlarged
    (tmp_path / "imgs" / "notes.txt").write_text("skip me")
    assert len(ImageFolder(tmp_path / "imgs")) == 1
    data = ImageFolder(tmp_path / "imgs", crop=12, recursive=True, flip=True)
    assert len(data) == 2 and all(data[i]["image"].shape == (3, 12, 12) for i in range(2))
    batch = next(iter(DataLoader(data, batch_size=2)))
    assert batch["image"].shape == (2, 3, 12, 12)
    save(tmp_path / "gray" / "g.png", codes(8, 8, 2)[..., :1])
    assert ImageFolder(tmp_path / "gray")[0]["image"].shape == (3, 8, 8)
    assert ImageFolder(tmp_path / "imgs", channels=1)[0]["image"].shape == (1, 20, 30)
    assert [p.name for p in list_images(tmp_path / "imgs", recursive=True)] == ["a.png", "b.png"]


def test_seeded_items_depend_only_on_seed_epoch_and_index(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "imgs" / f"{i}.png", codes(32, 32, i))
    first = ImageFolder(tmp_path / "imgs", crop=8, flip=True, seed=7)
    second = ImageFolder(tmp_path / "imgs", crop=8, flip=True, seed=7)
    forward = [first[i]["image"] for i in range(4)]
    backward = [second[i]["image"] for i in reversed(range(4))][::-1]
    for x, y in zip(forward, backward, strict=True):
        torch.testing.assert_close(x, y)
    second.set_epoch(1)
    assert any(not torch.equal(x, second[i]["image"]) for i, x in enumerate(forward))
    other_seed = ImageFolder(tmp_path / "imgs", crop=8, flip=True, seed=8)
    assert any(not torch.equal(x, other_seed[i]["image"]) for i, x in enumerate(forward))


def test_unseeded_items_follow_the_global_rng(tmp_path: Path) -> None:
    save(tmp_path / "imgs" / "a.png", codes(32, 32, 0))
    data = ImageFolder(tmp_path / "imgs", crop=8, flip=True)
    torch.manual_seed(3)
    x = data[0]["image"]
    torch.manual_seed(3)
    torch.testing.assert_close(data[0]["image"], x)


@pytest.fixture
def domains(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(3):
        save(tmp_path / "trainA" / f"a{i}.png", np.full((8, 8, 3), i / 10, np.float32))
    for i in range(5):
        save(tmp_path / "trainB" / f"b{i}.png", np.full((12, 10, 3), 0.5 + i / 10, np.float32))
    return tmp_path / "trainA", tmp_path / "trainB"


def test_unpaired_domains_of_different_sizes(domains, tmp_path: Path) -> None:
    data = UnpairedImages(*domains, seed=1)
    assert len(data) == 5
    for epoch in range(3):
        data.set_epoch(epoch)
        b_order = [data.b_index(i) for i in range(5)]
        assert sorted(b_order) == list(range(5))  # each B exactly once per epoch
        items = [data[i] for i in range(5)]
        a_levels = [round(float(it["A"].mean()) * 10) for it in items]
        assert a_levels == [0, 1, 2, 0, 1]  # A[i % len(A)]
        b_levels = [round(float(it["B"].mean()) * 10) - 5 for it in items]
        assert b_levels == b_order
    orders = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        orders.add(tuple(data.b_index(i) for i in range(5)))
    assert len(orders) > 1
    assert UnpairedImages.from_root(tmp_path, seed=1).paths_a == data.paths_a
    with pytest.raises(InputError, match="no images in domain B"):
        UnpairedImages(domains[0], tmp_path / "trainA" / "..", seed=1)


def test_unpaired_is_reproducible_given_seed(domains) -> None:
    one = UnpairedImages(*domains, crop=6, flip=True, seed=4)
    two = UnpairedImages(*domains, crop=6, flip=True, seed=4)
    one.set_epoch(2)
    two.set_epoch(2)
    for i in reversed(range(5)):
        torch.testing.assert_close(one[i]["B"], two[i]["B"])
        torch.testing.assert_close(one[i]["A"], two[i]["A"])


def test_helpers() -> None:
    a = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(2, 5, 7)
    c1, c2 = random_crop(a, a + 1, size=(3, 4), generator=item_generator(0, 0, 0))
    assert c1.shape == (2, 3, 4) and torch.equal(c2, c1 + 1)
    with pytest.raises(ValueError):
        random_crop(a, a[:, :4], size=2)
    f1, f2 = random_flip(a, a + 1, p=1.0)
    assert torch.equal(f1, a.flip(-1)) and torch.equal(f2, f1 + 1)
    assert random_flip(a, p=0.0)[0] is a
    g1, g2 = item_generator(1, 2, 3), item_generator(1, 2, 3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
