"""Live feeds: a camera's RTSP/RTMP/HTTP stream, or stdin with ``--live``, cleaned as it arrives, for days.

The stages are :class:`~vstream.drivers.pipeline.CleanStages`, as for files; only the source and the sinks
differ. The source (:class:`LiveSource`) reads on its own thread with open and read timeouts,
reconnects with backoff when the feed drops or stalls, rebases timestamps so the output's stay
monotonic across a gap, and hands frames over through a short queue that drops the oldest frame
not yet submitted when the cleaner falls behind, so latency stays bounded. The sinks
(:mod:`vstream.drivers.segments`) write segment files, push to an RTSP server, or stream MPEG-TS to stdout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from urllib.parse import urlsplit

import numpy as np

from ..config import CleanConfig
from ..errors import ConfigError, InputOpenError, VStreamError, redact
from ..stages.decode import STDIN, VideoReader
from ..stages.frame import Frame
from ..stages.smooth import ResidualSmoother
from .pipeline import CleanStages, Discontinuity, default_in_flight, open_runner, resolve_workers
from .segments import LiveSink, open_sink

log = logging.getLogger(__name__)

LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp"})
STREAM_SCHEMES = LIVE_SCHEMES | {"http", "https"}
OUTPUT_TIME_BASE = Fraction(1, 90000)  # RTSP's and MPEG-TS's clock: any camera's pts fits
MAX_WAITING = 64  # decoded frames waiting for the cleaner, at most


def is_live(source: str) -> bool:
    """Inputs that go to the live path by default: streaming URLs (not http). Stdin (``-``) is
    read as a file, every frame kept, unless ``--live`` says it is a camera's stream: a recorded
    file piped in comes faster than real time, and the live path would drop what it cannot keep up with."""
    return urlsplit(source).scheme.lower() in LIVE_SCHEMES


@dataclass(frozen=True)
class LiveOptions:
    """How to read a live feed and keep it going.

    ``open_timeout_s``/``read_timeout_s``: give up on a connection that does not answer, or goes
    silent, after this long. ``max_retries``/``retry_for_s``: stop reconnecting after this many
    attempts in a row, or this long without frames (None: never). ``max_wait_s``: the drop
    policy: a decoded frame that has waited longer than this for the cleaner is dropped, oldest
    first, when a newer one is waiting (so a burst the cleaner catches up on costs nothing, and a
    cleaner that falls behind sheds frames instead of adding latency). ``segment_time_s``: length
    of each segment file.
    """

    rtsp_transport: str = "tcp"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    max_retries: int | None = None
    retry_for_s: float | None = None
    backoff_s: tuple[float, float] = (0.5, 30.0)  # first and longest wait between attempts
    max_wait_s: float = 0.15
    segment_time_s: float = 60.0
    stats_every_s: float = 5.0
    listen: bool = False  # RTSP only: be the server a publisher pushes to, waiting open_timeout_s

    def __post_init__(self) -> None:
        if self.listen and self.rtsp_transport != "tcp":
            raise ConfigError("listening for an RTSP publisher takes --rtsp-transport tcp")

    def av_options(self, source: str) -> dict[str, str]:
        """Low-latency options for ``source`` (FFmpeg names; the RTSP socket timeout in µs).

        Probing is kept short: every frame read while FFmpeg probes comes out in one burst when
        the input opens, and it probes 1 s by default (measured on RTSP: open took 0.96 s and
        the first 30 frames came at once; with these options open took 0.06 s and frames came
        at the camera's pace). RTSP needs almost no probing, since its SDP describes the stream.
        Not ``fflags=nobuffer``: it discards the packets read while probing, the first keyframe
        among them, so nothing decodes until the camera's next one (a 90-frame clip with one
        keyframe gave 0 frames with it).
        """
        options = {"flags": "low_delay", "analyzeduration": "500000"}
        if urlsplit(source).scheme.lower() in ("rtsp", "rtsps"):
            options.update(analyzeduration="100000", probesize="32", rtsp_transport=self.rtsp_transport,
                           timeout=str(int(self.read_timeout_s * 1_000_000)))
            if self.listen:
                options.update(rtsp_flags="listen", listen_timeout=str(max(1, round(self.open_timeout_s))))
        return options


class LiveStats:
    """Counters and the added latency (decoded → muxed) of a live run; safe across threads."""

    def __init__(self) -> None:
        self.frames_in = self.frames_out = self.dropped = self.reconnects = 0
        self._arrivals: dict[int, float] = {}
        self._window: list[float] = []
        self._all = np.zeros(10_001, np.int64)  # whole-run latency histogram, 1 ms bins, last = 10 s+
        self._lock = threading.Lock()
        self._mark = (time.monotonic(), 0, 0, 0)

    def arrived(self, frame: Frame) -> None:
        with self._lock:
            self.frames_in += 1
            self._arrivals[frame.index] = time.monotonic()

    def dropped_frame(self, frame: Frame) -> None:
        with self._lock:
            self.dropped += 1
            self._arrivals.pop(frame.index, None)

    def written(self, frame: Frame) -> None:
        with self._lock:
            self.frames_out += 1
            arrival = self._arrivals.pop(frame.index, None)
            if arrival is not None:
                latency = time.monotonic() - arrival
                self._window.append(latency)
                self._all[min(int(latency * 1000), len(self._all) - 1)] += 1

    @property
    def in_flight(self) -> int:
        """Frames in that are neither written nor dropped (yet): after a stop, the ones it cut off."""
        with self._lock:
            return len(self._arrivals)

    def latency_ms(self, whole_run: bool = False) -> tuple[float, float]:
        """Added latency p50 and p95 in ms, since the last :meth:`line` or over the whole run."""
        with self._lock:
            if whole_run:
                cumulative = np.cumsum(self._all)
                if not cumulative[-1]:
                    return 0.0, 0.0
                return tuple(float(np.searchsorted(cumulative, q * cumulative[-1])) for q in (0.5, 0.95))
            if not self._window:
                return 0.0, 0.0
            return tuple(float(v) * 1000 for v in np.percentile(self._window, [50, 95]))

    def line(self) -> str:
        """One stats line for the interval since the previous call."""
        p50, p95 = self.latency_ms()
        now = time.monotonic()
        with self._lock:
            then, frames_in, frames_out, dropped = self._mark
            seconds = max(now - then, 1e-9)
            self._mark = (now, self.frames_in, self.frames_out, self.dropped)
            self._window.clear()
            return (
                f"live: in {(self.frames_in - frames_in) / seconds:.1f} fps, out "
                f"{(self.frames_out - frames_out) / seconds:.1f} fps, dropped {self.dropped - dropped} "
                f"({self.dropped} in all), latency p50 {p50:.0f} ms p95 {p95:.0f} ms, "
                f"reconnects {self.reconnects}"
            )


class LiveSource:
    """Read a live feed on a background thread; iterate it for frames and :class:`Discontinuity` markers.

    Frames are renumbered over the whole run and their pts rebased to :data:`OUTPUT_TIME_BASE`,
    increasing across reconnects (a gap keeps its wall-clock length). The iteration ends when the
    feed is given up on (see :class:`LiveOptions`), stdin ends, or :meth:`stop` is called;
    :attr:`failure` then says why, or is None for a clean end of input.
    """

    def __init__(self, source: str, options: LiveOptions, stats: LiveStats) -> None:
        self.source = source
        self.name = "stdin" if source == STDIN else redact(source)
        self.options = options
        self.stats = stats
        self.failure: VStreamError | None = None
        self._queue: deque[tuple[Frame | Discontinuity | None, float]] = deque()  # (item, arrival)
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._index = 0
        self._last_pts: int | None = None
        self._step = 1
        self._offset: int | None = None  # output pts - source pts (in output ticks), per connection
        self._started: float | None = None
        self._thread = threading.Thread(target=self._run, name="vstream-live-source", daemon=True)

    def start(self) -> LiveSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading, and wait (at most an open or read timeout) for the reader to let go.

        FFmpeg must not be left inside a read on this thread while the interpreter shuts down: a
        SIGTERM right after a reconnect could then end the process with a segfault.
        """
        self._stop.set()
        self._put(None)
        self._thread.join(max(self.options.open_timeout_s, self.options.read_timeout_s) + 1.0)

    def __iter__(self) -> Iterator[Frame | Discontinuity]:
        while (item := self._next()) is not None:
            yield item

    def _next(self) -> Frame | Discontinuity | None:
        """The oldest item, after dropping frames that waited too long while a newer one waits."""
        with self._ready:
            while True:
                while not self._queue:
                    self._ready.wait()
                item, arrival = self._queue.popleft()
                newer_frame = bool(self._queue) and isinstance(self._queue[0][0], Frame)
                stale = isinstance(item, Frame) and time.monotonic() - arrival > self.options.max_wait_s
                if not (stale and newer_frame):
                    return item
                self.stats.dropped_frame(item)

    def _put(self, item: Frame | Discontinuity | None) -> None:
        with self._ready:
            if isinstance(item, Frame):
                self.stats.arrived(item)
                if len(self._queue) >= MAX_WAITING and isinstance(self._queue[0][0], Frame):  # memory cap
                    self.stats.dropped_frame(self._queue.popleft()[0])
            self._queue.append((item, time.monotonic()))
            self._ready.notify()

    def _run(self) -> None:
        attempts, lost_at = 0, None
        try:
            while not self._stop.is_set():
                reason, got_frames = self._read_once(lost_at)
                if self._stop.is_set():
                    return
                if got_frames:
                    attempts, lost_at = 0, None
                lost_at = lost_at or time.monotonic()
                if self.source == STDIN:  # stdin cannot reconnect: its end is the input's
                    self._end_of_stdin(reason, got_frames)
                    return
                attempts += 1
                if self._give_up(attempts, lost_at, reason):
                    return
                delay = min(self.options.backoff_s[0] * 2 ** (attempts - 1), self.options.backoff_s[1])
                log.warning("lost %s (%s); reconnect attempt %d in %.1f s",
                            self.name, reason or "end of stream", attempts, delay)
                self._stop.wait(delay)
        except BaseException as exc:  # a bug, not an outage: end the run with it, not silently
            self.failure = VStreamError(f"live input {self.name} failed: {exc!r}")
        finally:
            self._put(None)

    def _end_of_stdin(self, reason: str | None, got_frames: bool) -> None:
        """A stdin that could not be read, or stopped with an error, fails the run (exit 1)."""
        if reason is not None:
            self.failure = InputOpenError(reason if not got_frames else f"stopped reading stdin: {reason}")

    def _give_up(self, attempts: int, lost_at: float, reason: str | None) -> bool:
        retries, retry_for = self.options.max_retries, self.options.retry_for_s
        out_of_retries = retries is not None and attempts > retries
        out_of_time = retry_for is not None and time.monotonic() - lost_at >= retry_for
        if not (out_of_retries or out_of_time):
            return False
        if reason is not None:
            self.failure = InputOpenError(
                f"gave up on {self.name} after {attempts - 1} retries over "
                f"{time.monotonic() - lost_at:.1f} s: {reason}"
            )
        else:
            log.warning("%s ended; not reconnecting (--max-retries/--retry-for)", self.name)
        return True

    def _read_once(self, lost_at: float | None) -> tuple[str | None, bool]:
        """One connection: returns why it ended (None: end of stream) and whether frames came."""
        options = self.options
        timeout = (options.open_timeout_s, options.read_timeout_s)
        try:
            reader = VideoReader(self.source, options.av_options(self.source), timeout=timeout, live=True)
        except VStreamError as exc:
            return str(exc), False
        got_frames = False
        with reader:
            width, height = reader.info.width, reader.info.height
            if width % 2 or height % 2:  # frames carry 4:2:0 planes, which need an even size
                log.warning("the feed %s is %dx%d: the live output is %dx%d, its last column/row repeated",
                            self.name, width, height, width + width % 2, height + height % 2)
            rate = reader.info.average_rate or Fraction(25)
            self._step = max(1, round(1 / (rate * OUTPUT_TIME_BASE)))
            self._offset = None
            try:
                for frame in reader.items(passthrough=False):
                    if self._stop.is_set():
                        break
                    if not got_frames and lost_at is not None and self._last_pts is not None:
                        gap = time.monotonic() - lost_at
                        self.stats.reconnects += 1
                        log.warning("reconnected to %s after %.1f s; the output has a gap there", self.name, gap)
                        self._put(Discontinuity(gap))
                    got_frames = True
                    self._put(self._rebased(frame))
            except VStreamError as exc:  # opened, but no frame decoded
                return str(exc), got_frames
        return reader.stop_reason, got_frames

    def _rebased(self, frame: Frame) -> Frame:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if self._last_pts is None:
            expected = 0
        elif self._offset is None:  # first frame of a connection: resume at the wall-clock time
            expected = max(self._last_pts + self._step, round((now - self._started) / OUTPUT_TIME_BASE))
        else:
            expected = self._last_pts + self._step
        if frame.pts is None or frame.time_base is None:
            pts = expected
        else:
            ticks = round(frame.pts * frame.time_base / OUTPUT_TIME_BASE)
            if self._offset is None:
                self._offset = expected - ticks
            pts = ticks + self._offset
        if self._last_pts is not None:
            pts = max(pts, self._last_pts + 1)  # never backwards, whatever the camera sends
        self._last_pts = pts
        self._index += 1
        return replace(frame, index=self._index - 1, pts=pts, time_base=OUTPUT_TIME_BASE)


@dataclass(frozen=True)
class LiveReport:
    """What a live run did; ``interrupted``: stopped by Ctrl-C/SIGTERM (the normal way to stop).

    ``frames_in`` = ``frames_out`` + ``dropped`` + ``in_flight``: the frames received and not yet
    cleaned or encoded when the run stopped, which were not written.
    """

    frames_in: int
    frames_out: int
    dropped: int
    in_flight: int
    reconnects: int
    latency_p50_ms: float
    latency_p95_ms: float
    seconds: float
    outputs: list[str]
    interrupted: bool


def clean_live(
    source: str,
    output: str,
    config: CleanConfig,
    options: LiveOptions,
    *,
    address: str | None = None,
    on_stats: Callable[[str], None] | None = None,
) -> LiveReport:
    """Clean the live feed ``source`` (a URL or ``-``) into ``output`` until stopped or given up.

    ``output``: ``-`` (MPEG-TS on stdout), ``rtsp://…``/``rtmp://…`` (pushed), or a file name
    whose segments are written beside it with their start time in the name. ``on_stats(line)``
    gets a stats line every ``options.stats_every_s``. Ctrl-C (KeyboardInterrupt) stops reading,
    finishes the frames in flight (unless hurried, :mod:`vstream.stopping`) and finalises the
    output. Raises :class:`InputOpenError` once
    the feed is given up on, after finalising what was written.
    """
    start = time.monotonic()
    stats = LiveStats()
    workers = resolve_workers(config)
    runner = open_runner(config, workers, address)
    try:
        sink: LiveSink = open_sink(output, config.encode, options.segment_time_s, stats.written)
        stages = CleanStages(runner, ResidualSmoother(config.temporal), config)
        live = LiveSource(source, options, stats).start()
        ticker = _Ticker(options.stats_every_s, lambda: on_stats(stats.line())) if on_stats else None
        try:
            interrupted = stages.run(live, sink.put, default_in_flight(config, workers))
        finally:
            live.stop()
            if ticker:
                ticker.stop()
            sink.close()
    finally:
        runner.close()
    if live.failure is not None and not interrupted:
        raise live.failure
    p50, p95 = stats.latency_ms(whole_run=True)
    return LiveReport(stats.frames_in, stats.frames_out, stats.dropped, stats.in_flight, stats.reconnects, p50, p95,
                      time.monotonic() - start, sink.outputs, interrupted)


class _Ticker:
    """Call ``tick`` every ``every_s`` seconds on a daemon thread until :meth:`stop`."""

    def __init__(self, every_s: float, tick: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s, tick), name="vstream-stats", daemon=True)
        self._thread.start()

    def _run(self, every_s: float, tick: Callable[[], None]) -> None:
        while not self._stop.wait(every_s):
            tick()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
