"""Loading a long JPEG-baseline cine: first frame vs whole loop, decode speed, memory on open.

The benchmark writes (in a temporary folder) a US Multi-frame loop of 600×800 colour frames,
JPEG baseline YBR_FULL_422 (Pillow, quality 90, 4:2:2 chroma subsampling — how scanners store
cine), from speckle-like frames with a moving gradient, encapsulated without a Basic Offset
Table (the common, worst case: msus indexes fragments itself).

Figures:

* ``time to first frame`` — ``msus.load`` + ``frame(0)``; baseline = ``msus.load`` + every frame
  (the whole loop decoded).  Goal: ratio ≤ 0.05.
* ``full-loop decode throughput`` — frames/s through ``cine.frame(i)`` (fresh Cine, every frame
  once); baseline = ``cv2.imdecode`` + BGR→RGB on the same JPEG bytes already in memory.
  Goal: ratio ≥ 0.70.
* ``peak memory opening 2000-frame loop`` — tracemalloc peak during ``msus.load`` of a 2,000-frame
  file; baseline = bytes of the decoded loop (2,000 × 600×800×3).  Goal: ratio ≪ 0.01.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

ROWS, COLS = 600, 800
N_LOOP = 300
N_LONG = 2000
DISTINCT = 40  # distinct encoded frames, cycled (keeps generation fast; sizes stay realistic)
REPEAT = 5


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    out = []
    for i in range(n):
        speckle = rng.rayleigh(1.0, (ROWS // 2, COLS // 2)).astype(np.float32)
        speckle = np.kron(speckle, np.ones((2, 2), np.float32))
        band = 0.5 + 0.5 * np.sin((y / 40.0) + (x / 150.0) + i * 0.3)
        grey = np.clip(speckle * 70 * band + 20, 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        rgb[:40, :200] = (230, 200, 40)  # a coloured annotation box, as scanners burn in
        out.append(rgb)
    return out


def _jpeg(frame: np.ndarray) -> bytes:
    from msus.export.jpeg import encode_jpeg

    return encode_jpeg(frame, 90, "422")


def _write_loop(path: Path, jpegs: list[bytes], n: int) -> None:
    from pydicom.uid import JPEGBaseline8Bit

    from msus.synth.dicom import us_multiframe_dataset, write_dicom

    write_dicom(us_multiframe_dataset(fragments=[jpegs[i % len(jpegs)] for i in range(n)], fps=30.0,
                                      transfer_syntax=JPEGBaseline8Bit, shape=(n, ROWS, COLS, 3),
                                      photometric="YBR_FULL_422", offset_table=False), path)


def first_frame(path: Path) -> None:
    """Open a loop and decode its first frame (what "time to first frame" times)."""
    import msus

    with msus.load(path) as c:
        c.frame(0)


def every_frame(path: Path) -> None:
    """Open a loop and decode every frame, keeping none (what "full-loop decode" times)."""
    import msus

    with msus.load(path, cache_frames=1) as c:
        for i in range(len(c)):
            c.frame(i)


def run() -> list[Figure]:
    import cv2

    import msus

    jpegs = [_jpeg(f) for f in _frames(DISTINCT)]
    loop_jpegs = [jpegs[i % DISTINCT] for i in range(N_LOOP)]
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        loop = Path(tmp) / "loop300.dcm"
        _write_loop(loop, jpegs, N_LOOP)

        def first():
            first_frame(loop)

        def whole():
            every_frame(loop)

        def cv2_all():
            for b in loop_jpegs:
                cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)

        first()  # warm imports and the page cache
        cv2_all()
        # interleaved, best of REPEAT each: the machine is shared, so neighbours' load hits both alike
        t_first, t_whole, t_cv2 = [], [], []
        for _ in range(REPEAT):
            t_first.append(_timed(first))
            t_whole.append(_timed(whole))
            t_cv2.append(_timed(cv2_all))
        t_first, t_whole, t_cv2 = min(t_first), min(t_whole), min(t_cv2)
        figures.append(Figure(
            f"loading: time to first frame ({N_LOOP}-frame JPEG)", t_first * 1000, "ms",
            baseline=t_whole * 1000, ratio=t_first / t_whole,
            note="baseline: open + decode every frame; goal ratio <= 0.05"))
        fps_msus, fps_cv2 = N_LOOP / t_whole, N_LOOP / t_cv2
        figures.append(Figure(
            f"loading: full-loop decode ({ROWS}x{COLS} RGB)", fps_msus, "frames/s",
            baseline=fps_cv2, ratio=fps_msus / fps_cv2,
            note="baseline: cv2.imdecode+BGR2RGB on the same JPEG bytes in memory; goal ratio >= 0.70"))

        long = Path(tmp) / "loop2000.dcm"
        _write_loop(long, jpegs, N_LONG)
        decoded_bytes = N_LONG * ROWS * COLS * 3
        tracemalloc.start()
        t0 = time.perf_counter()
        cine = msus.load(long)
        t_open = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(cine) == N_LONG
        cine.close()
        figures.append(Figure(
            f"loading: peak memory opening {N_LONG}-frame loop", peak / 2**20, "MiB",
            baseline=decoded_bytes / 2**20, ratio=peak / decoded_bytes,
            note=f"baseline: the decoded loop's size; open took {t_open * 1000:.0f} ms; goal ratio << 0.01"))
    return figures


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
