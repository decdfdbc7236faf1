"""``vstream bench``: cleaning speed against a plain PyAV transcode of the same input, in one run.

Absolute timings on a shared machine are noisy; the figure that matters is the ratio
``clean fps / transcode fps``, measured back to back on the same clip with the same encoder
settings. Each case runs in a fresh process so its peak memory is its own.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from . import colour, pyramid
from .config import CleanConfig
from .decode import VideoReader
from .encode import EncodeSettings, VideoWriter
from .infer import InterferenceModel
from .pipeline import clean_video

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True)
class CaseResult:
    """One timed run: frames per second once running (``startup_s``, starting Ray and loading
    the model, excluded: it does not grow with the video), and the process's peak memory."""

    fps: float
    peak_mb: float
    startup_s: float = 0.0


@dataclass(frozen=True)
class SizeResult:
    size: str
    frames: int
    transcode: CaseResult
    clean: CaseResult
    network_ms: float
    network_input: str

    @property
    def ratio(self) -> float:
        return self.clean.fps / self.transcode.fps

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def make_source(sample: Path, size: str, frames: int, out: Path, keyint: int | None = None) -> Path:
    """Scale ``sample`` to ``size`` (looping it to ``frames``) into a near-lossless 25 fps H.264
    clip, with a keyframe every ``keyint`` frames if given (else x264's default, 250)."""
    width, height = SIZES[size]
    with VideoReader(sample) as reader:
        images = [cv2.resize(colour.to_rgb(f.i420), (width, height), interpolation=cv2.INTER_CUBIC)
                  for f in reader.items(passthrough=False)]
    with av.open(str(out), "w") as container:
        options = {"crf": "12", "preset": "ultrafast"}
        if keyint:
            options["x264-params"] = f"keyint={keyint}:min-keyint={keyint}:scenecut=0"
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(images[i % len(images)], format="rgb24")
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
    start = time.perf_counter()
    startup_s = 0.0
    if kind == "transcode":
        frames = transcode(source, output, config.encode)
    else:
        report = clean_video(str(source), output, config)
        frames, startup_s = report.frames, report.startup_s
    seconds = time.perf_counter() - start - startup_s
    queue.put(CaseResult(frames / seconds, _peak_rss_mb(), startup_s))


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


def bench_size(sample: Path, size: str, frames: int, config: CleanConfig, workdir: Path) -> SizeResult:
    """Transcode and clean the same ``size`` clip back to back."""
    source = make_source(sample, size, frames, workdir / f"source-{size}.mp4")
    plain = run_case("transcode", source, workdir / f"transcode-{size}.mp4", config)
    cleaned = run_case("clean", source, workdir / f"clean-{size}.mp4", config)
    width, height = SIZES[size]
    ms, shape = network_ms(config.model_path(), height, width, config.max_side, config.threads_per_worker)
    return SizeResult(size, frames, plain, cleaned, ms, shape)


def fidelity(source: Path, config: CleanConfig, workdir: Path) -> tuple[float, int]:
    """PSNR (dB, RGB, over the whole clip) of ``vstream clean``'s output against its input, and
    the frame count. On footage with nothing to remove it should stay high: no side effects.
    With ``config.encode.crf == 0`` (lossless x264) it measures the cleaner alone."""
    output = workdir / f"fidelity-{source.stem}-crf{config.encode.crf}.mkv"
    clean_video(str(source), output, config)
    squared, count, frames = 0.0, 0, 0
    with VideoReader(source) as original, VideoReader(output) as cleaned:
        pairs = zip(original.items(passthrough=False), cleaned.items(passthrough=False))
        for a, b in pairs:
            diff = colour.to_rgb(a.i420).astype(np.float64) - colour.to_rgb(b.i420)
            squared += float(np.square(diff).sum())
            count += diff.size
            frames += 1
    mse = squared / count
    return (10 * np.log10(255.0**2 / mse) if mse else float("inf")), frames


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
    from .actors import connect_ray
    from .archive import clean_archive

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
