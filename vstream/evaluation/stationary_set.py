"""A synthetic set of clips with a stationary layer, and their clean frames as ground truth.

Glass that moves with the camera (a windshield, a dome) adds a layer fixed in image coordinates:
``I_t(x) = clip(B_t(x) + g_t * opacity * R(x + d_t))``, with ``B_t`` a real clip's frame (the
clean scene), ``R >= 0`` the layer, ``g_t`` a slow brightness drift and ``d_t`` a sub-pixel
vibration. Each clip is written as ``NAME.input.mkv`` (the composite), ``NAME.clean.mkv``
(``B_t``) and ``NAME.layer.png`` (``R``), losslessly (H.264 qp 0, 4:4:4), with
``manifest.json`` listing the recipes, every frame's ``g_t`` and ``d_t``, and the files used.
Everything is drawn from the recipes' seeds, so a rebuild gives the same frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import InputOpenError
from ..stages.decode import is_image
from ..synthesis.regions import feather
from .evaluate import read_rgb
from .photos import fit

MAX_WIDTH = 640
MANIFEST = "manifest.json"
LAYERS = ("dome", "photo", "dirt")


@dataclass(frozen=True)
class Recipe:
    """One clip. ``video``: the base clip in ``videos/``, from its frame ``start``. ``layer``:
    ``dome`` (``train_real/dome_reflection_layers/layer_<source>.jpg``), ``photo`` (the
    ``source``-th of ``photos/`` sorted, blurred, under a feathered ellipse) or ``dirt`` (blotches
    and rings drawn from ``seed``; ``source`` unused). ``stop``: (frame, frames held): the scene
    freezes there while the layer keeps drifting. ``cut``: (video, its first frame, the frame the
    cut comes at): the clip goes on with another one. ``drift``: the largest change of the layer's
    gain; ``vibration``: the largest shift of the layer, in pixels. ``frames``: of the clip,
    stop included."""

    name: str
    video: str
    layer: str
    source: int
    opacity: float
    seed: int
    frames: int = 150
    start: int = 0
    stop: tuple[int, int] | None = None
    cut: tuple[str, int, int] | None = None
    drift: float = 0.15
    vibration: float = 0.5


RECIPES = (
    Recipe("highway_dome", "highway_driving.mp4", "dome", 3, 0.18, 1),
    Recipe("city_dome", "city_traffic_incar.mp4", "dome", 17, 0.18, 2, start=60),
    Recipe("whiteright_photo", "udacity_solidWhiteRight.mp4", "photo", 120, 0.15, 3),
    Recipe("bikes_photo_stop", "bikes.mp4", "photo", 700, 0.15, 4, stop=(50, 40)),
    Recipe("highway_dirt", "highway_driving.mp4", "dirt", 0, 0.35, 5, start=140),
    Recipe("whiteright_dirt_stop", "udacity_solidWhiteRight.mp4", "dirt", 0, 0.35, 6, start=70, stop=(40, 40)),
    Recipe("whiteright_dome_cut", "udacity_solidWhiteRight.mp4", "dome", 41, 0.18, 7, frames=110,
           start=140, cut=("udacity_test_video.mp4", 0, 72)),
    Recipe("city_photo_cut", "city_traffic_incar.mp4", "photo", 300, 0.15, 8, frames=120, start=200,
           cut=("bikes.mp4", 120, 60)),
)


def build_stationary_set(data_root: Path, out_dir: Path, on_clip: Callable[[str], None] | None = None,
                         recipes: tuple[Recipe, ...] | None = None) -> list[Path]:
    """Write every recipe's clip (default: :data:`RECIPES`) from the data folder ``data_root``
    into ``out_dir``, then its manifest; ``on_clip(name)`` after each clip. Returns the input files."""
    recipes = RECIPES if recipes is None else recipes
    for recipe in recipes:  # every file it needs exists before anything is written
        for path in _sources(data_root, recipe):
            if not path.is_file():
                raise InputOpenError(f"stationary set: {path} not found (is {data_root} vstream's data folder?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    clips, inputs = [], []
    for recipe in recipes:
        clips.append(_build_clip(data_root, out_dir, recipe))
        inputs.append(out_dir / clips[-1]["input"])
        if on_clip:
            on_clip(recipe.name)
    manifest = {"data_root": str(data_root), "clips": clips}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return inputs


def read_manifest(folder: Path) -> list[dict]:
    """The clips of a set :func:`build_stationary_set` wrote, each with its files' full paths."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InputOpenError(f"not a stationary set (no {MANIFEST}): {folder}")
    clips = json.loads(path.read_text())["clips"]
    return [{**clip, **{key: str(folder / clip[key]) for key in ("input", "clean", "layer")}} for clip in clips]


def rgb_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of a video file as ``(H, W, 3)`` uint8 RGB (PyAV's conversion, the same for every file scored)."""
    if not Path(path).is_file():
        raise InputOpenError(f"input not found: {path}")
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def place_layer(layer: np.ndarray, gain: float, shift: tuple[float, float]) -> np.ndarray:
    """``gain * layer(x + shift)``: the uint8 layer as added to one frame, float32 in 0..255."""
    matrix = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    moved = cv2.warpAffine(layer.astype(np.float32), matrix, layer.shape[1::-1],
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    return gain * moved


def _sources(data_root: Path, recipe: Recipe) -> list[Path]:
    """The data files a recipe reads."""
    videos = [data_root / "videos" / recipe.video] + ([data_root / "videos" / recipe.cut[0]] if recipe.cut else [])
    if recipe.layer == "dome":
        return videos + [data_root / "train_real" / "dome_reflection_layers" / f"layer_{recipe.source:02d}.jpg"]
    if recipe.layer == "photo":
        photos = _photos(data_root / "photos")
        if recipe.source >= len(photos):
            raise InputOpenError(f"stationary set: {recipe.name} wants photo {recipe.source} of {len(photos)} "
                                 f"in {data_root / 'photos'}")
        return videos + [photos[recipe.source]]
    if recipe.layer == "dirt":
        return videos
    raise ValueError(f"unknown layer kind {recipe.layer!r}; choose from {', '.join(LAYERS)}")


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputOpenError(f"stationary set: no photos folder {folder}")
    return sorted(p for p in folder.iterdir() if is_image(p))


def _build_clip(data_root: Path, out_dir: Path, recipe: Recipe) -> dict:
    """Write one recipe's files; its manifest entry."""
    rng = np.random.default_rng(recipe.seed)
    sources = _sources(data_root, recipe)
    with av.open(str(sources[0])) as probe:
        stream = probe.streams.video[0]
        width, height, rate = stream.width, stream.height, stream.average_rate or Fraction(25)
    scale = min(1.0, MAX_WIDTH / width)
    size = (2 * round(width * scale / 2), 2 * round(height * scale / 2))
    layer = _layer(recipe, sources[-1], size, rng)
    gains = 1 + recipe.drift * _slow_wave(recipe.frames, rng)
    radius = recipe.vibration * np.sqrt(rng.uniform(0, 1, recipe.frames))
    angle = rng.uniform(0, 2 * np.pi, recipe.frames)
    shifts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    names = {key: f"{recipe.name}.{key}.{'png' if key == 'layer' else 'mkv'}" for key in ("input", "clean", "layer")}
    cv2.imwrite(str(out_dir / names["layer"]), cv2.cvtColor(layer, cv2.COLOR_RGB2BGR))
    frames = 0
    with _Writer(out_dir / names["input"], size, rate) as dirty, _Writer(out_dir / names["clean"], size, rate) as clean:
        for t, scene in enumerate(_scene(data_root, recipe, size)):
            added = place_layer(layer, recipe.opacity * gains[t], tuple(shifts[t]))
            dirty.write(np.clip(np.rint(scene + added), 0, 255).astype(np.uint8))
            clean.write(scene)
            frames += 1
    return {**asdict(recipe), **names, "frames": frames, "width": size[0], "height": size[1], "fps": str(rate),
            "gain": np.round(gains[:frames], 5).tolist(), "shift": np.round(shifts[:frames], 5).tolist(),
            "data": [str(p) for p in sources]}


def _layer(recipe: Recipe, source: Path, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``R`` at ``size``, uint8 RGB (what the clip adds at gain 1 and opacity 1)."""
    width, height = size
    if recipe.layer == "dome":
        layer = cv2.resize(read_rgb(source), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    elif recipe.layer == "photo":
        photo = cv2.GaussianBlur(fit(read_rgb(source), size[1], size[0]).astype(np.float32), (0, 0), 2.0 * width / MAX_WIDTH)
        mask = np.zeros((height, width), np.float32)
        centre = (int(width * rng.uniform(0.4, 0.6)), int(height * rng.uniform(0.4, 0.6)))
        cv2.ellipse(mask, centre, (int(0.46 * width), int(0.46 * height)), 0, 0, 360, 1.0, -1)  # ~2/3 of the frame
        layer = photo * feather(mask, 0.08 * min(size))
    else:
        layer = 255 * _dirt(height, width, rng)
    return np.clip(np.rint(layer), 0, 255).astype(np.uint8)


def _dirt(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Soft blotches and dried rings, brownish grey, ``(H, W, 3)`` float32 in 0..1."""
    short = min(height, width)
    amount = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(8, 16))):
        blob = np.zeros_like(amount)
        axes = tuple(max(2, int(a)) for a in rng.uniform(0.02, 0.1, 2) * short)
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.ellipse(blob, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        amount += rng.uniform(0.3, 1.0) * feather(blob, rng.uniform(0.3, 0.8) * max(axes))[..., 0]
    rings = np.zeros_like(amount)
    for _ in range(int(rng.integers(4, 10))):
        axes = tuple(max(2, int(a)) for a in rng.uniform(0.03, 0.12, 2) * short)
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.ellipse(rings, centre, axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.5, 1.0), max(1, short // 100))
    amount += cv2.GaussianBlur(rings, (0, 0), 1.0)
    grain = cv2.GaussianBlur(rng.uniform(0, 1, (height, width)).astype(np.float32), (0, 0), 1.5)
    amount *= 0.7 + 0.6 * (grain - grain.mean())
    return np.clip(amount, 0, 1)[..., None] * np.array([0.9, 0.84, 0.72], np.float32)


def _slow_wave(frames: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth curve in -1..1 over ``frames``: two sines of random phase, periods of 3-8 s and 1-2.5 s at 25 fps."""
    t = np.arange(frames)
    slow = np.sin(2 * np.pi * t / rng.uniform(75, 200) + rng.uniform(0, 2 * np.pi))
    fast = np.sin(2 * np.pi * t / rng.uniform(25, 60) + rng.uniform(0, 2 * np.pi))
    return 0.7 * slow + 0.3 * fast


def _scene(data_root: Path, recipe: Recipe, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The clean frames ``B_t``: the base clip (then the cut's), its frame held during the stop;
    fewer than ``recipe.frames`` where a video ends first."""
    held_at, held = recipe.stop or (recipe.frames, 0)
    first = recipe.cut[2] if recipe.cut else recipe.frames

    def moved(t: int) -> int:  # frames the scene has moved on by frame t
        return t - min(max(t - held_at, 0), held)

    decoders: dict[str, Iterator[tuple[int, np.ndarray]]] = {}
    current: dict[str, tuple[int, np.ndarray]] = {}
    for t in range(recipe.frames):
        video, index = ((recipe.video, recipe.start + moved(t)) if t < first
                        else (recipe.cut[0], recipe.cut[1] + moved(t) - moved(first)))
        decoder = decoders.setdefault(video, _video_frames(data_root / "videos" / video, size))
        while video not in current or current[video][0] < index:
            item = next(decoder, None)
            if item is None:
                return
            current[video] = item
        yield current[video][1]


def _video_frames(path: Path, size: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) of ``path``, each frame cropped to the aspect of ``size`` and resized to it, float32."""
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            yield index, fit(frame.to_ndarray(format="rgb24"), size[1], size[0]).astype(np.float32)


class _Writer:
    """A lossless video file of RGB frames: H.264 at qp 0 in 4:4:4."""

    def __init__(self, path: Path, size: tuple[int, int], rate: Fraction) -> None:
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=rate, options={"qp": "0", "preset": "veryfast"})
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv444p"
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24").reformat(format="yuv444p")
        frame.pts = self.frames
        self.frames += 1
        self.container.mux(self.stream.encode(frame))

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()
