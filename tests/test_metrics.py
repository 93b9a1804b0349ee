"""Image metrics against known values, and FID/KID against independent computations."""

import math

import numpy as np
import pytest
import torch

from gcp_colorize.evaluation import metrics
from gcp_colorize.evaluation.crops import crop_boxes, cut
from gcp_colorize.evaluation.inception import fid, kid
from gcp_colorize.model.lab import lab_to_rgb

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 and CIEDE2000 (4 decimals).
SHARMA_PAIRS = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def photo(seed=0, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    base = np.stack([x, y, 1 - x * y], -1)
    return (0.8 * base + 0.2 * rng.random(base.shape)).astype(np.float32)


def test_ciede2000_matches_sharma_table():
    data = np.array(SHARMA_PAIRS)
    got = metrics.ciede2000(data[:, :3], data[:, 3:6])
    np.testing.assert_allclose(got, data[:, 6], atol=5e-5)
    swapped = metrics.ciede2000(data[:, 3:6], data[:, :3])
    np.testing.assert_allclose(swapped, got, atol=1e-10)
    assert metrics.ciede2000(data[0, :3], data[0, :3]) == 0


def test_identical_images():
    image = photo()
    assert metrics.psnr(image, image) == math.inf
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert metrics.mean_ciede2000(image, image) == 0
    assert metrics.luminance_drift(image, image) == 0


def test_psnr_of_a_constant_shift():
    image = photo() * 0.5
    assert metrics.psnr(image + 0.1, image) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert metrics.psnr(image + 0.01, image) == pytest.approx(40.0, abs=1e-3)


def test_ssim_matches_the_wang_definition_elsewhere():
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    a, b = photo(0), np.clip(photo(0) + 0.1 * np.random.default_rng(1).standard_normal((48, 64, 3)), 0, 1)
    expected = structural_similarity(a, b.astype(np.float32), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0, channel_axis=2)
    assert metrics.ssim(a, b.astype(np.float32)) == pytest.approx(expected, abs=1e-5)
    assert metrics.ssim(a, b) < 1


def test_colourfulness_known_values():
    red = np.zeros((8, 8, 3), np.float32)
    red[..., 0] = 1
    # rg = 255, yb = 127.5, no spread: M = 0.3 * hypot(255, 127.5)
    assert metrics.colourfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    halves = np.zeros((8, 8, 3), np.float32)
    halves[:, :4, 0] = 1  # rg: 255 or 0 -> std 127.5, mean 127.5; yb: 127.5 or 0 likewise
    expected = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 63.75)
    assert metrics.colourfulness(halves) == pytest.approx(expected)
    assert metrics.colourfulness(metrics.neutral_gray(photo())) == pytest.approx(0, abs=1e-9)


def test_neutral_gray_keeps_lightness_and_has_no_chroma():
    image = photo(3)
    gray = metrics.neutral_gray(image)
    assert gray.dtype == np.float32 and gray.shape == image.shape
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert metrics.luminance_drift(gray, image) < 0.01
    assert np.abs(metrics.lab(gray)[..., 1:]).max() < 0.01


def test_luminance_drift_of_a_lightness_shift():
    image = photo(4) * 0.6 + 0.2
    lab = metrics.lab(image)
    shifted = lab + np.array([2.0, 0, 0])
    rgb = lab_to_rgb(torch.from_numpy(shifted).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert metrics.luminance_drift(rgb, image) == pytest.approx(2.0, abs=0.01)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        metrics.psnr(photo(shape=(20, 20)), photo(shape=(20, 21)))
    with pytest.raises(ValueError, match="RGB image"):
        metrics.colourfulness(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(photo(shape=(8, 8)), photo(shape=(8, 8)))


def test_fid_matches_the_scipy_matrix_square_root_and_a_closed_form():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(250, 16)) * 1.5 + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy_linalg.sqrtm(s1 @ s2).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid(a, a) == pytest.approx(0, abs=1e-8)
    # many samples from N(0, I) and N(1, 4 I) in 4-D: |mu|^2 + d (1 + 4 - 2 * 2) = 4 + 4
    big = rng.normal(size=(200000, 4)), rng.normal(size=(200000, 4)) * 2 + 1
    assert fid(*big) == pytest.approx(8.0, abs=0.1)
    with pytest.raises(ValueError):
        fid(a, b[:, :8])


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + 0.4
    k = lambda p, q: (p @ q.T / 8 + 1) ** 3  # noqa: E731
    m = len(x)
    direct = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1))
              + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1)) - 2 * k(x, y).mean())
    assert kid(x, y, subsets=3, subset_size=40) == pytest.approx(direct)  # full set each time
    same = [kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), subsets=10) for _ in range(5)]
    assert abs(np.mean(same)) < 0.5 * kid(x, y)
    assert kid(x, y) > 0.05


def test_crops_are_fixed_and_inside():
    boxes = crop_boxes("a", 300, 500, 128, 20, seed=1)
    assert boxes == crop_boxes("a", 300, 500, 128, 20, seed=1)
    assert boxes != crop_boxes("b", 300, 500, 128, 20, seed=1)
    assert all(0 <= t <= 300 - 128 and 0 <= l <= 500 - 128 and s == 128 for t, l, s in boxes)
    assert crop_boxes("small", 100, 90, 299, 3)[0][2] == 90
    image = photo(shape=(300, 500))
    crops = cut(image, boxes, 128)
    assert crops.shape == (20, 3, 128, 128)
    t, l, _ = boxes[5]
    np.testing.assert_array_equal(crops[5].permute(1, 2, 0).numpy(), image[t:t + 128, l:l + 128])


def test_crops_of_a_photo_shorter_than_the_crop_are_scaled_up():
    image = photo(shape=(100, 90))
    boxes = crop_boxes("small", 100, 90, 128, 3)
    crops = cut(image, boxes, 128)
    assert crops.shape == (3, 3, 128, 128)  # stacks with the crops of larger photos
    t, l, s = boxes[0]
    region = image[t:t + s, l:l + s].mean(axis=(0, 1))
    np.testing.assert_allclose(crops[0].mean(dim=(1, 2)).numpy(), region, atol=0.01)
