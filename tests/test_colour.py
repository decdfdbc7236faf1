from __future__ import annotations

import numpy as np

from vstream.stages import colour, pyramid
from vstream.stages.reconstruct import apply_residual, apply_residual_i420

from media import synthetic_frame


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2))


def test_planes_join_round_trip():
    i420 = colour.from_rgb(synthetic_frame(0, 64, 48))
    y, u, v = colour.planes(i420)
    assert y.shape == (48, 64) and u.shape == v.shape == (24, 32)
    np.testing.assert_array_equal(colour.join(y, u, v), i420)


def test_affine_matches_opencv():
    rgb = synthetic_frame(1, 64, 48)
    i420 = colour.from_rgb(rgb)
    y, u, v = colour.planes(i420)
    # at full chroma resolution, our YUV→RGB agrees with OpenCV's I420 conversion on flat areas
    import cv2

    u_full = cv2.resize(u, (64, 48), interpolation=cv2.INTER_NEAREST)
    v_full = cv2.resize(v, (64, 48), interpolation=cv2.INTER_NEAREST)
    ours = colour.yuv444_to_rgb(y, u_full, v_full)
    theirs = colour.to_rgb(i420)
    assert np.abs(ours.astype(int) - theirs).mean() < 1.0


def test_small_level_matches_the_rgb_pyramid():
    i420 = colour.from_rgb(synthetic_frame(2, 640, 360))
    rgb = colour.to_rgb(i420)
    assert psnr(pyramid.downsample_i420(i420, 2), pyramid.downsample(rgb, 2)) > 35
    np.testing.assert_array_equal(pyramid.downsample_i420(i420, 0), rgb)


def test_zero_residual_keeps_planes_bit_identical():
    i420 = colour.from_rgb(synthetic_frame(3, 320, 180))
    shapes = pyramid.level_shapes(180, 320, 2)
    out = apply_residual_i420(i420, np.zeros((*shapes[-1], 3), np.float32), shapes)
    np.testing.assert_array_equal(out, i420)


def test_residual_under_the_floor_returns_the_frame_uncopied(rng):
    i420 = colour.from_rgb(synthetic_frame(3, 320, 180))
    shapes = pyramid.level_shapes(180, 320, 2)
    residual = rng.uniform(-0.009, 0.009, (*shapes[-1], 3)).astype(np.float32)
    assert apply_residual_i420(i420, residual, shapes, floor=0.01) is i420
    assert apply_residual_i420(i420, residual, shapes, floor=0.0) is not i420


def test_i420_reconstruction_matches_rgb(rng):
    i420 = colour.from_rgb(synthetic_frame(4, 320, 180))
    rgb = colour.to_rgb(i420)
    shapes = pyramid.level_shapes(180, 320, 2)
    residual = rng.normal(0, 0.05, (*shapes[-1], 3)).astype(np.float32)
    ours = colour.to_rgb(apply_residual_i420(i420, residual, shapes))
    assert psnr(ours, apply_residual(rgb, residual, shapes)) > 35


def test_hstack():
    a = colour.from_rgb(synthetic_frame(0, 32, 16))
    b = colour.from_rgb(synthetic_frame(9, 32, 16))
    both = colour.to_rgb(colour.hstack(a, b))
    np.testing.assert_array_equal(both[:, :32], colour.to_rgb(a))
    np.testing.assert_array_equal(both[:, 32:], colour.to_rgb(b))


def test_frame_already_small_enough(rng):
    """No pyramid level: the residual is applied at full size, chroma halved (4:2:0 cannot hold
    per-pixel colour noise, so the residual here is smooth, as a real interference layer is)."""
    import cv2

    i420 = colour.from_rgb(synthetic_frame(5, 96, 64))
    shapes = pyramid.level_shapes(64, 96, 0)
    residual = cv2.GaussianBlur(rng.normal(0, 0.3, (64, 96, 3)).astype(np.float32), (0, 0), 3)
    ours = colour.to_rgb(apply_residual_i420(i420, residual, shapes))
    assert psnr(ours, apply_residual(colour.to_rgb(i420), residual, shapes)) > 35


def test_444_and_16_bit_reconstruction_match_rgb(rng):
    """A 4:4:4 frame is cleaned with full-size chroma corrections, a 16-bit one at its own depth."""
    import cv2

    rgb = synthetic_frame(6, 320, 180)
    yuv444 = np.stack(cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)))  # BT.601 limited, as colour's maths
    shapes = pyramid.level_shapes(180, 320, 2)
    residual = rng.normal(0, 0.05, (*shapes[-1], 3)).astype(np.float32)
    expected = apply_residual(colour.yuv444_to_rgb(*yuv444), residual, shapes)
    cleaned = apply_residual_i420(yuv444, residual, shapes)
    assert psnr(colour.yuv444_to_rgb(*cleaned), expected) > 35
    deep = apply_residual_i420(yuv444.astype(np.uint16) * 257, residual, shapes)
    assert deep.dtype == np.uint16 and np.abs(colour.to_8bit(deep).astype(int) - cleaned).max() <= 1
