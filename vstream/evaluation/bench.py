"""``vstream bench``: cleaning speed against a plain PyAV transcode of the same input, in one run.

Absolute timings on a shared machine are noisy; the figure that matters is the ratio
``clean fps / transcode fps``, measured back to back on the same clip with the same encoder
settings. Each case runs in a fresh process so its peak memory is its own. Cleaning is timed
twice: with the network on every frame and with the preset's key-frame schedule
(:mod:`vstream.stages.schedule`), whose output is then compared with the every-frame one.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np

from ..config import CleanConfig
from ..drivers.pipeline import clean_video
from ..stages import colour, pyramid
from ..stages.decode import VideoReader
from ..stages.encode import EncodeSettings, VideoWriter
from ..stages.infer import InterferenceModel
from .evaluate import read_pair
from .metrics import psnr_of_mse

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True)
class CaseResult:
    """One timed run: frames per second once running (``startup_s``, starting Ray and loading
    the model, excluded: it does not grow with the video), and the process's peak memory.

    ``cpu_ms``: the process's CPU time (all its threads, the encoder's included; Ray actors not)
    per frame. On a machine the encoder already keeps busy, the ratio of two cases' CPU time
    tracks the ratio of their fps, and it varies less with other load (time spent waiting for a
    core is not counted).
    """

    fps: float
    peak_mb: float
    cpu_ms: float = 0.0
    startup_s: float = 0.0
    inferred: float = 1.0  # share of the frames the network ran on
    stage_ms: dict[str, float] = field(default_factory=dict)  # per frame (vstream.stagetimes)


@dataclass(frozen=True)
class SizeResult:
    """``every_frame``: cleaned with the network on every frame; ``clean``: with the preset's
    schedule; ``psnr_vs_every_db``: the second's output against the first's (both at the preset's CRF)."""

    size: str
    frames: int
    transcode: CaseResult
    every_frame: CaseResult
    clean: CaseResult
    network_ms: float
    network_input: str
    psnr_vs_every_db: float

    @property
    def ratio(self) -> float:
        return self.clean.fps / self.transcode.fps

    @property
    def every_frame_ratio(self) -> float:
        return self.every_frame.fps / self.transcode.fps

    @property
    def cpu_ratio(self) -> float:
        """Transcode CPU time per frame / scheduled clean's (see :class:`CaseResult`)."""
        return self.transcode.cpu_ms / self.clean.cpu_ms

    @property
    def every_frame_cpu_ratio(self) -> float:
        return self.transcode.cpu_ms / self.every_frame.cpu_ms

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "every_frame_ratio": self.every_frame_ratio,
                "cpu_ratio": self.cpu_ratio, "every_frame_cpu_ratio": self.every_frame_cpu_ratio}


def every_frame(config: CleanConfig) -> CleanConfig:
    """``config`` with the network run on every frame."""
    return replace(config, schedule=replace(config.schedule, max_gap=1))


def make_source(sample: Path, size: str, frames: int, out: Path, keyint: int | None = None) -> Path:
    """Scale ``sample`` to ``size`` (looping it to ``frames``) into a near-lossless 25 fps H.264
    clip, with a keyframe every ``keyint`` frames if given (else x264's default, 250)."""
    width, height = SIZES[size]
    with VideoReader(sample) as reader:
        images = [cv2.resize(colour.to_rgb(f.i420), (width, height), interpolation=cv2.INTER_CUBIC)
                  for f in reader.items(passthrough=False)]
    options = {"crf": "12", "preset": "ultrafast"}
    if keyint:
        options["x264-params"] = f"keyint={keyint}:min-keyint={keyint}:scenecut=0"
    return write_clip((images[i % len(images)] for i in range(frames)), out, options)


def write_clip(images: Iterable[np.ndarray], out: Path, options: dict[str, str]) -> Path:
    """Same-size ``(H, W, 3)`` uint8 RGB images (even H, W) into a 25 fps yuv420p H.264 clip,
    encoded with x264 ``options`` (``crf`` 0: lossless)."""
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.pix_fmt = "yuv420p"
        for i, image in enumerate(images):
            if i == 0:
                stream.height, stream.width = image.shape[:2]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def transcode(source: Path, output: Path, settings: EncodeSettings) -> int:
    """Plain PyAV decode → encode with ``settings`` and no cleaning; returns frames written."""
    with VideoReader(source) as reader:
        with VideoWriter(output, reader.info, settings) as writer:
            for frame in reader.container.decode(reader.video):
                # As ffmpeg does: a decoded frame's picture type would otherwise force the
                # source's I/P/B pattern on x264 and skip its own (costlier) decisions.
                frame.pict_type = av.video.frame.PictureType.NONE
                writer.write_frame(frame)
            return writer.frames


def network_ms(model_path: Path, height: int, width: int, max_side: int, threads: int, repeats: int = 30) -> tuple[float, str]:
    """Median ms of one forward pass on the smallest pyramid level of a ``height × width`` frame."""
    h, w = pyramid.level_shapes(height, width, pyramid.levels_for(height, width, max_side))[-1]
    model = InterferenceModel(model_path, threads=threads)
    small = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    model.residual(small)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.residual(small)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), f"{w}x{h}"


def _timed(kind: str, source: Path, output: Path, config: CleanConfig, queue) -> None:
    start, cpu_start = time.perf_counter(), _cpu_s()
    if kind == "transcode":
        frames = transcode(source, output, config.encode)
        seconds = time.perf_counter() - start
        queue.put(CaseResult(frames / seconds, _peak_rss_mb(), 1000 * (_cpu_s() - cpu_start) / frames))
        return
    report = clean_video(str(source), output, config)
    seconds = time.perf_counter() - start - report.startup_s
    queue.put(CaseResult(report.frames / seconds, _peak_rss_mb(), 1000 * (_cpu_s() - cpu_start) / report.frames,
                         report.startup_s, report.inferred / report.frames, report.stage_ms))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec, so a spawned child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(kind: str, source: Path, output: Path, config: CleanConfig) -> CaseResult:
    """Run one case in a fresh process, so its peak memory (driver process; Ray actors are not
    counted) is its own and Ray starts and stops inside it."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_timed, args=(kind, source, output, config, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"bench case {kind} failed (exit code {process.exitcode})")
    return queue.get()


def bench_size(sample: Path, size: str, frames: int, config: CleanConfig, workdir: Path,
               repeats: int = 1) -> list[SizeResult]:
    """Transcode, clean with the network on every frame, and clean as scheduled: the same
    ``size`` clip, back to back, ``repeats`` times over (one result per round: on a shared
    machine the ratio moves from round to round, so compare the rounds' spread, not one)."""
    source = make_source(sample, size, frames, workdir / f"source-{size}.mp4")
    every_out, clean_out = workdir / f"every-{size}.mp4", workdir / f"clean-{size}.mp4"
    rounds = []
    for _ in range(repeats):
        plain = run_case("transcode", source, workdir / f"transcode-{size}.mp4", config)
        rounds.append((plain, run_case("clean", source, every_out, every_frame(config)),
                       run_case("clean", source, clean_out, config)))
    psnr, _ = psnr_between(every_out, clean_out)  # the same every round: cleaning is deterministic
    width, height = SIZES[size]
    ms, shape = network_ms(config.model_path(), height, width, config.max_side, config.threads_per_worker)
    return [SizeResult(size, frames, *cases, ms, shape, psnr) for cases in rounds]


def fidelity(source: Path, config: CleanConfig, workdir: Path) -> tuple[float, int]:
    """PSNR (dB, RGB, over the whole clip) of ``vstream clean``'s output against its input, and
    the frame count. On footage with nothing to remove it should stay high: no side effects.
    With ``config.encode.crf == 0`` (lossless x264) it measures the cleaner alone."""
    output = workdir / f"fidelity-{source.stem}-crf{config.encode.crf}.mkv"
    clean_video(str(source), output, config)
    return psnr_between(source, output)


def psnr_between(a: Path, b: Path) -> tuple[float, int]:
    """PSNR (dB, RGB, over the whole clip) of video ``b`` against video ``a``, and the frame count."""
    squared, count, frames = 0.0, 0, 0
    for x, y in zip(_i420s(a), _i420s(b)):
        diff = colour.to_rgb(x).astype(np.float64) - colour.to_rgb(y)
        squared += float(np.square(diff).sum())
        count += diff.size
        frames += 1
    return psnr_of_mse(squared / count), frames


@dataclass(frozen=True)
class ScheduleFidelity:
    """A clip cleaned losslessly with the network on every frame and as scheduled.

    ``psnr_db``: the scheduled output against the every-frame one. ``inferred``: the share of
    frames the network ran on when scheduled. ``flicker_*``: :func:`still_flicker` of each.
    """

    clip: str
    frames: int
    psnr_db: float
    inferred: float
    flicker_every: float
    flicker_scheduled: float


def _clean_both_ways(source: Path, config: CleanConfig, stem: Path) -> tuple[Path, Path, float]:
    """Clean ``source`` losslessly with the network on every frame and as ``config`` schedules
    it, into ``<stem>-every.mkv`` and ``<stem>-scheduled.mkv``; returns both and the share of
    frames the network ran on when scheduled."""
    lossless = replace(config, encode=replace(config.encode, crf=0))
    every, scheduled = (stem.with_name(f"{stem.name}-{name}.mkv") for name in ("every", "scheduled"))
    clean_video(str(source), every, every_frame(lossless))
    report = clean_video(str(source), scheduled, lossless)
    return every, scheduled, report.inferred / report.frames


def schedule_fidelity(source: Path, config: CleanConfig, workdir: Path) -> ScheduleFidelity:
    """Clean ``source`` losslessly with the network on every frame and as ``config`` schedules it, and compare."""
    every, scheduled, inferred = _clean_both_ways(source, config, workdir / f"schedule-{source.stem}")
    psnr, frames = psnr_between(every, scheduled)
    return ScheduleFidelity(source.name, frames, psnr, inferred,
                            still_flicker(source, every), still_flicker(source, scheduled))


def still_flicker(source: Path, cleaned: Path, still: int = 2) -> float:
    """Flicker that cleaning adds where the picture is still: the mean frame-to-frame change
    (luma levels) of what was removed (input − output), over the pixels whose input luma
    changed by at most ``still`` levels from the frame before."""
    total, count, before = 0.0, 0, None
    for a, b in zip(_i420s(source), _i420s(cleaned)):
        y = colour.planes(a)[0].astype(np.int16)
        removed = y - colour.planes(b)[0]
        if before is not None and before[0].shape == y.shape:
            mask = np.abs(y - before[0]) <= still
            total += float(np.abs(removed - before[1])[mask].sum())
            count += int(mask.sum())
        before = y, removed
    return total / count if count else 0.0


SLIDE_FRAMES = 60
SLIDE_CROP = 0.8  # the crop's share of each side; it slides over the rest, corner to corner


@dataclass(frozen=True)
class SlideFidelity:
    """A real photo through glass made into a clip by sliding a crop over it, cleaned
    losslessly with the network on every frame and as scheduled. ``psnr_*_db``: the input and
    each output against the same crops of the photo's ground-truth background."""

    name: str
    frames: int
    psnr_input_db: float
    psnr_every_db: float
    psnr_scheduled_db: float
    inferred: float


def sliding_crops(image: np.ndarray, frames: int = SLIDE_FRAMES, share: float = SLIDE_CROP) -> list[np.ndarray]:
    """``frames`` even-sized crops of ``image``, ``share`` of each side, moving evenly from its
    top-left corner to its bottom-right: a camera panning over a still scene."""
    h, w = image.shape[:2]
    ch, cw = int(h * share) // 2 * 2, int(w * share) // 2 * 2
    steps = np.linspace(0.0, 1.0, frames)
    return [image[y : y + ch, x : x + cw]
            for x, y in zip(np.rint(steps * (w - cw)).astype(int), np.rint(steps * (h - ch)).astype(int))]


def slide_fidelity(image: Path, background: Path, config: CleanConfig, workdir: Path) -> SlideFidelity:
    """Pan over ``image`` (:func:`sliding_crops`), clean it both ways, and score both against the
    background's crops, encoded as the input is (lossless yuv420p) so both share its format."""
    lossless_h264 = {"crf": "0", "preset": "ultrafast"}
    source, truth = (write_clip(sliding_crops(rgb), workdir / f"slide-{image.stem}-{name}.mp4", lossless_h264)
                     for rgb, name in zip(read_pair(image, background), ("input", "truth")))
    every, scheduled, inferred = _clean_both_ways(source, config, workdir / f"slide-{image.stem}")
    (psnr_input, frames), (psnr_every, _), (psnr_scheduled, _) = (
        psnr_between(truth, path) for path in (source, every, scheduled)
    )
    return SlideFidelity(image.stem, frames, psnr_input, psnr_every, psnr_scheduled, inferred)


def _i420s(path: Path) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for frame in reader.items(passthrough=False):
            yield frame.i420


ARCHIVE_SEGMENTS = 4


@dataclass(frozen=True)
class ArchiveResult:
    """Wall seconds of one archive job on a ``seconds``-long clip: cleaned whole on one job,
    and cut into :data:`ARCHIVE_SEGMENTS` segments on each number of jobs."""

    seconds: float
    frames: int
    whole_s: float
    split_s: dict[int, float]

    @property
    def overhead(self) -> float:
        """Segmenting's cost on one job: time as segments / time whole (1.0: none)."""
        return self.split_s[1] / self.whole_s

    @property
    def scaling(self) -> dict[int, float]:
        """Throughput on each number of jobs as a ratio to one job's."""
        return {jobs: self.split_s[1] / seconds for jobs, seconds in self.split_s.items()}

    def as_dict(self) -> dict:
        return {**asdict(self), "overhead": self.overhead, "scaling": self.scaling}


def bench_archive(
    sample: Path, seconds: float, jobs: list[int], config: CleanConfig, workdir: Path, size: str = "720p"
) -> ArchiveResult:
    """Time ``vstream clean`` on a folder of one ``seconds``-long clip of ``size`` (a keyframe
    every 2 s), back to back in one Ray session: whole on one job, then in segments on each of
    ``jobs`` (1 always included). Ray starts once, before the timings."""
    from ..drivers.actors import connect_ray
    from ..drivers.archive import clean_archive

    frames = round(seconds * 25)
    folder = workdir / "archive"
    folder.mkdir()
    make_source(sample, size, frames, folder / "long.mp4", keyint=50)
    ray, started = connect_ray(None, max(jobs))
    try:
        clean_archive(str(sample), workdir / "warm-up", config, jobs=1)  # a worker with vstream imported

        def timed(name: str, segment_s: float, n: int) -> float:
            report = clean_archive(str(folder), workdir / name, config, jobs=n, segment_s=segment_s)
            if report.failed:
                raise RuntimeError(f"archive bench {name} failed: {next(iter(report.failed.values()))}")
            return report.seconds

        whole = timed("whole", 0, 1)
        split = {n: timed(f"split-{n}", seconds / ARCHIVE_SEGMENTS, n) for n in sorted({1, *jobs})}
    finally:
        if started:
            ray.shutdown()
    return ArchiveResult(seconds, frames, whole, split)
