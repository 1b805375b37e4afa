"""Codecs: JPEG baseline against a bare libjpeg decode, the luma-only path, DICOM video and WMV.

Loops are generated in a temporary folder from the same speckle-like frames as ``bench_loading``
(480×640, 120 frames).

Figures:

* ``JPEG baseline full-loop decode`` — frames/s through ``cine.frame(i)`` of a YBR_FULL_422 JPEG
  loop; baseline = ``cv2.imdecode`` + BGR→RGB on the same fragments already in memory.
  Goal: ratio ≥ 0.9.
* ``JPEG decode, default 64-frame cache`` — the same through a Cine that keeps its default cache;
  baseline = the bare decode keeping the last 64 frames too (holding frames means writing fresh
  memory for each one, which costs both alike ~15–20 %).  Goal: ratio ≥ 0.9.
* ``JPEG luma-only decode`` — frames/s through ``cine.frame_grey(i)``; baseline = the colour
  decode above.  (Ratio > 1: grey consumers gain by taking the luma path.)
* ``H.264 DICOM`` / ``WMV`` ``full-loop decode`` — frames/s through ``cine.frame(i)`` (fresh Cine,
  every frame once); baseline = a plain PyAV decode of the same stream (``container.decode`` +
  ``to_ndarray('rgb24')``).  Goal: ratio ≥ 0.8.
* ``... time to first frame`` — ``msus.load`` + ``frame(0)``; baseline = ``msus.load`` + every
  frame.  Goal: ratio ≤ 0.05.
"""

from __future__ import annotations

import collections
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure, best_of
from msus.cine import DEFAULT_CACHE_FRAMES

ROWS, COLS = 480, 640
N = 120
DISTINCT = 40
REPEAT = 5


@contextlib.contextmanager
def _loading_size():
    """bench_loading's frame and loop writers, at this benchmark's frame size."""
    import benchmarks.bench_loading as bl

    old = bl.ROWS, bl.COLS
    bl.ROWS, bl.COLS = ROWS, COLS
    try:
        yield bl
    finally:
        bl.ROWS, bl.COLS = old


def _frames() -> list[np.ndarray]:
    with _loading_size() as bl:
        return bl._frames(DISTINCT)


def _best(fn) -> float:
    fn()  # warm
    return best_of(fn, REPEAT)


def _interleaved(*fns) -> list[float]:
    """Best of REPEAT for each, interleaved so neighbours' load on a shared machine hits all alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(REPEAT):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def _encode(frames, codec: str, fmt: str, bit_rate: int | None = None) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = COLS, ROWS, "yuv420p"
        if bit_rate:
            s.codec_context.bit_rate = bit_rate
        s.options = {"g": "30"}
        for i in range(N):
            for p in s.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return buf.getvalue()


def _h264_dicom(path: Path, stream: bytes) -> None:
    from pydicom.uid import MPEG4HP41

    from msus.synth.dicom import us_multiframe_dataset, write_dicom

    write_dicom(us_multiframe_dataset(fragments=[stream], fps=30.0, transfer_syntax=MPEG4HP41, shape=(N, ROWS, COLS, 3),
                                      photometric="YBR_PARTIAL_420", offset_table=False), path)


def _jpeg_figures(tmp: Path, frames) -> list[Figure]:
    import cv2

    import msus
    with _loading_size() as bl:
        jpegs = [bl._jpeg(f) for f in frames]
        loop = tmp / "jpeg120.dcm"
        bl._write_loop(loop, jpegs, N)
    mem = [jpegs[i % len(jpegs)] for i in range(N)]

    def colour():
        with msus.load(loop, cache_frames=1) as c:
            for i in range(N):
                c.frame(i)

    def grey():
        with msus.load(loop, cache_frames=1) as c:
            for i in range(N):
                c.frame_grey(i)

    def bare():
        for b in mem:
            cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)

    def cached():  # the default cache keeps the last 64 frames
        with msus.load(loop) as c:
            for i in range(N):
                c.frame(i)

    def bare_kept():  # ... so the fair baseline keeps them too (fresh memory for every frame)
        kept = collections.deque(maxlen=DEFAULT_CACHE_FRAMES)
        for b in mem:
            kept.append(cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED),
                                     cv2.COLOR_BGR2RGB))

    t_colour, t_bare, t_grey, t_cached, t_kept = _interleaved(colour, bare, grey, cached, bare_kept)
    return [
        Figure(f"codecs: JPEG decode, default {DEFAULT_CACHE_FRAMES}-frame cache", N / t_cached, "frames/s",
               baseline=N / t_kept, ratio=t_kept / t_cached,
               note=f"baseline: the same bare decode keeping the last {DEFAULT_CACHE_FRAMES} frames; goal >= 0.9"),
        Figure(f"codecs: JPEG baseline full-loop decode ({ROWS}x{COLS})", N / t_colour, "frames/s",
               baseline=N / t_bare, ratio=t_bare / t_colour,
               note="baseline: cv2.imdecode+BGR2RGB on the same fragments in memory; goal ratio >= 0.9"),
        Figure("codecs: JPEG luma-only decode (frame_grey)", N / t_grey, "frames/s",
               baseline=N / t_colour, ratio=t_colour / t_grey,
               note="baseline: the colour decode through cine.frame; >1 = grey consumers gain"),
    ]


def _video_figures(label: str, path: Path) -> list[Figure]:
    import av

    from benchmarks.bench_loading import every_frame, first_frame

    def first():
        first_frame(path)

    def whole():
        every_frame(path)

    if path.suffix == ".dcm":
        from pydicom import dcmread
        from pydicom.encaps import generate_fragments

        ds = dcmread(path)
        raw = b"".join(generate_fragments(ds.PixelData[8 + int.from_bytes(ds.PixelData[4:8], "little"):]))
    else:
        raw = path.read_bytes()

    def plain():
        with av.open(io.BytesIO(raw)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            for fr in c.decode(s):
                fr.to_ndarray(format="rgb24")

    t_whole, t_plain = _interleaved(whole, plain)
    t_first = _best(first)
    return [
        Figure(f"codecs: {label} full-loop decode", N / t_whole, "frames/s", baseline=N / t_plain,
               ratio=t_plain / t_whole, note="baseline: plain PyAV decode of the same stream; goal ratio >= 0.8"),
        Figure(f"codecs: {label} time to first frame", t_first * 1000, "ms", baseline=t_whole * 1000,
               ratio=t_first / t_whole, note="baseline: open + decode every frame; goal ratio <= 0.05"),
    ]


def run() -> list[Figure]:
    frames = _frames()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        figures += _jpeg_figures(tmp, frames)
        dcm = tmp / "h264.dcm"
        _h264_dicom(dcm, _encode(frames, "libx264", "h264"))
        figures += _video_figures(f"H.264 DICOM {N}f {ROWS}x{COLS}", dcm)
        wmv = tmp / "loop.wmv"
        wmv.write_bytes(_encode(frames, "wmv2", "asf", bit_rate=8_000_000))
        figures += _video_figures(f"WMV {N}f {ROWS}x{COLS}", wmv)
    return figures


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
