"""Annotated video: the loop (or an A–B range) as H.264 MP4 (PyAV) or GIF (Pillow).

Frames keep the loop's own timing: MP4 presentation times are the frame times in ms (variable
frame rate stays variable); GIF delays are the frame intervals rounded to 10 ms (at least 20 ms,
the shortest delay browsers honour).  Annotations come from :mod:`msus.export.overlay`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from msus.cine import to_grey
from msus.errors import ExportError
from msus.export import ExportData
from msus.export.atomic import write_atomic
from msus.export.overlay import annotate, to_rgb

MP4_CRF = 20
GIF_MAX_WIDTH = 480


def frame_range(cine, start: int | None, stop: int | None) -> range:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive), 0-based; None means the ends."""
    n = cine.n_frames
    a = 0 if start is None else int(start)
    b = n if stop is None else int(stop)
    if not (0 <= a < b <= n):
        raise ExportError(f"frame range {a}..{b} is not inside the loop (0..{n})")
    return range(a, b)


def annotated_frames(cine, data: ExportData, frames: range, *, source_frames=None):
    """Yield (index, time_ms, RGB annotated frame); ``source_frames(i)`` overrides ``cine.frame``."""
    get = source_frames or cine.frame
    t0 = float(cine.frame_times_ms[frames.start])
    for i in frames:
        t = float(cine.frame_times_ms[i])
        yield i, t - t0, annotate(get(i), i, data, time_ms=float(cine.frame_times_ms[i]))


def write_mp4(cine, data: ExportData, out, *, start=None, stop=None, source_frames=None, crf: int = MP4_CRF) -> Path:
    """Write an annotated H.264 MP4 (yuv420p; odd sizes padded by one black row/column)."""
    import av

    out = Path(out)
    frames = frame_range(cine, start, stop)
    h, w = cine.rows + cine.rows % 2, cine.columns + cine.columns % 2
    tmp = out.with_name(out.name + ".part.mp4")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=max(1, int(round(cine.fps))))
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
            last = -1
            for _i, t, img in annotated_frames(cine, data, frames, source_frames=source_frames):
                if img.shape[0] != h or img.shape[1] != w:
                    img = cv2.copyMakeBorder(img, 0, h - img.shape[0], 0, w - img.shape[1], cv2.BORDER_CONSTANT, value=0)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                pts = max(int(round(t)), last + 1)
                last = pts
                vf.pts = pts
                vf.time_base = Fraction(1, 1000)
                for pkt in stream.encode(vf):
                    container.mux(pkt)
            for pkt in stream.encode():
                container.mux(pkt)
        tmp.replace(out)
    except (OSError, av.FFmpegError) as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write the video {out.name}: {exc}") from exc
    return out


_N_GREY = 192


def _gif_palette() -> list[int]:
    greys = [round(v * 255 / (_N_GREY - 1)) for v in range(_N_GREY)]
    pal = [c for g in greys for c in (g, g, g)]
    for r in range(4):
        for g in range(4):
            for b in range(4):
                pal += [r * 85, g * 85, b * 85]
    return pal


_PALETTE = _gif_palette()


_GREY_LUT = np.array([(v * (_N_GREY - 1) + 127) // 255 for v in range(256)], dtype=np.uint8)
_Q_LUTS = [np.array([_N_GREY * (k == 0) + ((v + 42) // 85) * m for v in range(256)], dtype=np.uint8) for k, m in enumerate((16, 4, 1))]


def _to_palette(img: np.ndarray):
    """RGB → one fixed palette (192 greys + a 4×4×4 colour cube): fast and stable across frames."""
    from PIL import Image

    r, g, b = cv2.split(img)
    chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    idx = cv2.add(cv2.add(cv2.LUT(r, _Q_LUTS[0]), cv2.LUT(g, _Q_LUTS[1])), cv2.LUT(b, _Q_LUTS[2]))
    grey = cv2.LUT(to_grey(img), _GREY_LUT)
    np.copyto(idx, grey, where=chroma < 24)
    im = Image.fromarray(idx, mode="P")
    im.putpalette(_PALETTE)
    return im


def _gif_delays(cine, order: list[int], speed: float) -> list[int]:
    """Delay (ms) of each frame of ``order``: its interval in the loop / ``speed``, 10 ms steps, ≥ 20 ms."""
    times = np.asarray(cine.frame_times_ms, dtype=float)
    interval = np.median(np.diff(times)) if cine.n_frames > 1 else 1000.0 / cine.fps
    out = []
    for i in order:
        d = times[i + 1] - times[i] if i + 1 < cine.n_frames else interval
        out.append(max(20, int(round(d / float(speed) / 10.0)) * 10))
    return out


def write_gif(cine, data: ExportData | None, out, *, start=None, stop=None, max_width: int = GIF_MAX_WIDTH,
              source_frames=None, speed: float = 1.0, ping_pong: bool = False) -> Path:
    """Write a looping GIF, scaled down to ``max_width`` px wide.

    ``data`` None writes the frames as they are (no annotations); ``speed`` < 1 is slow motion;
    ``ping_pong`` plays the range forward then back.
    """
    out = Path(out)
    frames = frame_range(cine, start, stop)
    if not float(speed) > 0:
        raise ExportError(f"the GIF speed must be positive, got {speed!r}")
    if data is None:
        get = source_frames or cine.frame
        made = ((i, to_rgb(get(i))) for i in frames)
    else:
        made = ((i, img) for i, _t, img in annotated_frames(cine, data, frames, source_frames=source_frames))
    order, images = [], []
    for i, img in made:
        if img.shape[1] > max_width:
            s = max_width / img.shape[1]
            img = cv2.resize(img, (max_width, max(1, int(round(img.shape[0] * s)))), interpolation=cv2.INTER_AREA)
        images.append(_to_palette(img))
        order.append(i)
    if ping_pong and len(images) > 2:
        images += images[-2:0:-1]
        order += order[-2:0:-1]
    delays = _gif_delays(cine, order, speed)
    return write_atomic(
        out,
        lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=delays, loop=0, disposal=1),
        what=f"the GIF {out.name}",
    )
