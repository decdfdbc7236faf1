"""Generated test media: moving synthetic frames, clips with audio, VFR, rotation, truncation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def synthetic_frame(index: int, width: int, height: int) -> np.ndarray:
    """A deterministic ``(H, W, 3)`` uint8 scene: gradients, a moving square, some texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 23.0 + index * 0.2)
    g = 128 + 100 * np.cos(y / 17.0 - index * 0.1)
    b = 255 * (x + y) / (width + height)
    rgb = np.stack([r, g, b], axis=-1)
    s = max(4, min(width, height) // 5)
    x0 = (index * 7) % max(1, width - s)
    y0 = (index * 3) % max(1, height - s)
    rgb[y0 : y0 + s, x0 : x0 + s] = (250, 240, 30)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_pair(folder: Path, name: str, image: np.ndarray, background: np.ndarray) -> tuple[Path, Path]:
    """``<name>_input.png`` and ``<name>_background.png`` (the location-aware layout) in ``folder``."""
    folder.mkdir(exist_ok=True)
    for suffix, rgb in (("input", image), ("background", background)):
        cv2.imwrite(str(folder / f"{name}_{suffix}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder / f"{name}_input.png", folder / f"{name}_background.png"


def make_clip(
    path: Path,
    frames: int = 24,
    width: int = 160,
    height: int = 96,
    fps: int = 24,
    audio: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    codec: str = "libx264",
    keyint: int | None = None,
    bframes: int = 0,
) -> Path:
    """Write a short clip; ``vfr`` spaces frames irregularly; ``audio`` adds a 440 Hz AAC track;
    ``keyint`` puts a keyframe every that many frames, ``bframes`` allows that many B-frames in a
    row, so pts and dts differ (x264 only)."""
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
    options = {"preset": "ultrafast", "crf": "10"}
    params = [f"keyint={keyint}:min-keyint={keyint}:scenecut=0"] if keyint else []
    params += [f"bframes={bframes}:b-adapt=0"] if bframes else []
    if params:
        options["x264-params"] = ":".join(params)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=48000)
            sound.layout = "mono"
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(i, width, height), format="rgb24")
            frame.pts = pts
            frame.time_base = time_base
            container.mux(video.encode(frame))
            pts += (1000 // fps) * (1 + i % 3) if vfr else 1
        container.mux(video.encode(None))
        if sound is not None:
            duration = pts * time_base
            samples = int(48000 * duration)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for offset in range(0, samples, 1024):
                chunk = tone[offset : offset + 1024]
                aframe = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
                aframe.sample_rate = 48000
                aframe.pts = offset
                container.mux(sound.encode(aframe))
            container.mux(sound.encode(None))
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], list[int], Fraction]:
    """All frames (RGB) of a file's first video stream, their pts, and its time base."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, pts = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
        return frames, pts, stream.time_base


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    """(pts in seconds·1e6, payload) of every audio packet, to compare a copy with its source."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [
            (round(p.pts * p.time_base * 1_000_000), bytes(p))
            for p in container.demux(stream)
            if p.size
        ]


def truncated_faststart(source: Path, path: Path, keep: float) -> Path:
    """``source`` remuxed with its index first (``movflags=faststart``), cut after ``keep`` of its
    bytes: the container still announces every frame, but only the first ones are there."""
    whole = path.with_name(f"whole-{path.name}")
    with av.open(str(source)) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def zeroed_ctts(source: Path, path: Path, keep_entries: int = 10) -> Path:
    """``source`` (an MP4 with B-frames) with its composition offsets (``ctts``) zeroed after the
    first ``keep_entries``: the decoded frames' pts go backwards and repeat, as in a damaged file."""
    data = bytearray(source.read_bytes())
    at = data.index(b"ctts")
    end = at - 4 + int.from_bytes(data[at - 4 : at], "big")
    start = at + 12 + 8 * keep_entries  # after version, flags, entry count and the entries kept
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))
    return path
