from __future__ import annotations

import cv2
import numpy as np
import pytest

from vstream.stages.schedule import KeySchedule, ScheduleConfig, carry

SHAPE = (90, 160, 3)


def scene(rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """A smooth texture (what optical flow can follow), moved ``shift`` pixels to the right."""
    noise = rng.integers(0, 256, (SHAPE[0], SHAPE[1] + 16, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 3)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    return np.ascontiguousarray(texture[:, 8 - shift : 8 - shift + SHAPE[1]])


def keys(schedule: KeySchedule, frames: list[np.ndarray], first: int = 0) -> list[int]:
    return [i for i, small in enumerate(frames, first) if schedule.plan(i, small) is None]


def test_still_scene_runs_the_network_on_multiples_of_max_gap():
    still = np.full(SHAPE, 120, np.uint8)
    schedule = KeySchedule(ScheduleConfig(threshold=0.02, max_gap=4), scene_cut=0.18)
    assert keys(schedule, [still] * 10) == [0, 4, 8]
    assert schedule.keys == 3


def test_a_segment_picks_the_whole_files_key_frames_after_max_gap_minus_one():
    still = np.full(SHAPE, 120, np.uint8)
    config = ScheduleConfig(max_gap=4)
    whole = keys(KeySchedule(config, 0.18), [still] * 12)
    segment = keys(KeySchedule(config, 0.18), [still] * 7, first=5)
    assert segment[0] == 5 and segment[1:] == [k for k in whole if k > 5 + 2]


@pytest.mark.parametrize("config", [ScheduleConfig(max_gap=1), ScheduleConfig(threshold=0.0, max_gap=8)])
def test_every_frame(config):
    still = np.full(SHAPE, 120, np.uint8)
    assert keys(KeySchedule(config, 0.18), [still] * 5) == [0, 1, 2, 3, 4]


def test_scene_cut_forces_the_network():
    schedule = KeySchedule(ScheduleConfig(threshold=1.0, max_gap=100), scene_cut=0.18)
    assert keys(schedule, [np.full(SHAPE, 20, np.uint8)] * 3 + [np.full(SHAPE, 220, np.uint8)]) == [0, 3]


def test_change_the_flow_cannot_explain_forces_the_network(rng):
    first = scene(rng)
    appeared = first.copy()
    appeared[20:60, 40:100] = 255 - appeared[20:60, 40:100]  # something new, not a cut
    schedule = KeySchedule(ScheduleConfig(threshold=0.02, max_gap=100), scene_cut=0.5)
    assert keys(schedule, [first, first, appeared]) == [0, 2]


def test_reset_forces_the_network():
    still = np.full(SHAPE, 120, np.uint8)
    schedule = KeySchedule(ScheduleConfig(max_gap=100), scene_cut=0.18)
    assert keys(schedule, [still, still]) == [0]
    schedule.reset()
    assert schedule.plan(2, still) is None


def test_still_pixels_keep_the_key_frames_residual_whatever_the_flow(rng):
    key = scene(np.random.default_rng(1))
    moved = key.copy()
    moved[:, :40] = scene(np.random.default_rng(1), shift=3)[:, :40]  # only the left part moves
    schedule = KeySchedule(ScheduleConfig(threshold=1.0, max_gap=100), scene_cut=0.5)
    schedule.plan(0, key)
    residual = rng.normal(0, 0.1, SHAPE).astype(np.float32)
    carried = carry(residual, schedule.plan(1, moved))
    np.testing.assert_array_equal(carried[:, 60:], residual[:, 60:])


def test_carried_residual_follows_the_motion():
    key, moved = scene(np.random.default_rng(1)), scene(np.random.default_rng(1), shift=3)
    schedule = KeySchedule(ScheduleConfig(threshold=0.05, max_gap=100), scene_cut=0.5)
    assert schedule.plan(0, key) is None
    where = schedule.plan(1, moved)
    assert where is not None and where.shape == (*SHAPE[:2], 2) and where.dtype == np.float32
    residual = key.astype(np.float32) / 255  # a residual shaped like the picture
    carried = carry(residual, where)
    expected = moved.astype(np.float32) / 255
    inner = (slice(10, -10), slice(10, -10))
    assert carried.dtype == np.float32 and carried.shape == SHAPE
    assert np.abs(carried - expected)[inner].mean() < 0.25 * np.abs(residual - expected)[inner].mean()


@pytest.mark.parametrize("field, value", [("threshold", -0.1), ("threshold", 1.5), ("threshold", "0.1"), ("max_gap", 0), ("max_gap", 2.5)])
def test_exception_on_bad_values(field, value):
    with pytest.raises(ValueError, match=f"schedule.{field}"):
        ScheduleConfig(**{field: value})
