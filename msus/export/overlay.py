"""Burn calipers, labels, the defect outline, the flag and a frame counter into a frame (cv2).

Used by the annotated video, the report's key frames and the teaching bundle.  Each caliper is
drawn bold on its own frame and thin on the others (so a video shows where it was measured
without flashing); the defect outline is drawn on the frames it was found on.  Text is ASCII
(OpenCV's Hershey fonts): "Δ" becomes "d", "≥" becomes ">=".

The report draws key frames with :func:`key_frame`: only the calipers of that frame, one colour
per reviewer (:func:`reviewer_colours`, the report prints the legend), each labelled with its
number in the report's caliper table, role and length, placed so that no two labels overlap.
"""

from __future__ import annotations

import cv2
import numpy as np

from msus.cine import to_grey
from msus.export import ExportData
from msus.measure import LABEL_CONTRACTION, LABEL_REST
from msus.terms import CLASSIFICATION_LABELS

COLOURS = {  # RGB
    LABEL_REST: (0, 200, 255),
    LABEL_CONTRACTION: (255, 150, 0),
    "outline": (60, 230, 60),
    "other": (255, 230, 0),
    "flag": (255, 70, 70),
    "text": (255, 255, 255),
}
#: Burned-in classification text (the one label map, in capitals).
CLASS_TEXT = {k: v.upper() for k, v in CLASSIFICATION_LABELS.items()}
_ASCII = str.maketrans({"Δ": "d", "≥": ">=", "≤": "<=", "×": "x", "–": "-", "—": "-", "…": "...", "µ": "u", "°": " deg"})


def ascii_text(s: str) -> str:
    return str(s).translate(_ASCII).encode("ascii", "replace").decode("ascii")


def _text(img, s, org, scale, colour, thick=1):
    s = ascii_text(s)
    x, y = int(org[0]), int(org[1])
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def _dim(c, f=0.55):
    return tuple(int(v * f) for v in c)


def to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    return np.array(frame, dtype=np.uint8, copy=True)


def draw_caliper(frame: np.ndarray, m, colour, label: str = "", below: bool = False) -> np.ndarray:
    """An RGB copy of ``frame`` with one caliper (``m``: ends ``x1, y1, x2, y2``, or None), end
    crosses and ``label`` (above the caliper, or ``below``) burned in, in ``colour`` (RGB)."""
    out = to_rgb(frame)
    if m is None:
        return out
    th = max(1, round(out.shape[1] / 400))
    p1 = (int(round(m.x1)), int(round(m.y1)))
    p2 = (int(round(m.x2)), int(round(m.y2)))
    cv2.line(out, p1, p2, colour, th, cv2.LINE_AA)
    for p in (p1, p2):
        cv2.drawMarker(out, p, colour, cv2.MARKER_CROSS, 6 * th + 6, th, cv2.LINE_AA)
    if label:
        if below:
            org = (min(p1[0], p2[0]), min(out.shape[0] - 4, max(p1[1], p2[1]) + 10 * th + 14))
        else:
            org = (min(p1[0], p2[0]), max(12, min(p1[1], p2[1]) - 6 * th))
        cv2.putText(out, ascii_text(label), org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * th + 0.1, colour, th, cv2.LINE_AA)
    return out


def difference_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|b − a| of two frames (grey), stretched so what moved stands out (uint8 H×W)."""
    ga = to_grey(a).astype(np.int16)
    gb = to_grey(b).astype(np.int16)
    d = np.abs(gb - ga)
    hi = float(np.percentile(d, 99.5)) or 1.0
    return np.clip(d * (255.0 / hi), 0, 255).astype(np.uint8)


REVIEWER_PALETTE = ((255, 190, 0), (0, 200, 255), (255, 90, 200), (190, 150, 255), (255, 255, 255))
_SHORT_ROLE = {LABEL_REST: "rest", LABEL_CONTRACTION: "contraction", "muscle thickness": "thickness", "other": ""}


def reviewer_colours(data: ExportData) -> dict[str, tuple[int, int, int]]:
    """One RGB colour per reviewer: the finding's reader first, then the others in caliper order."""
    names = [data.reader] if data.reader else []
    names += [m.reviewer or "unnamed" for m in data.measurements]
    names = list(dict.fromkeys(names))
    return {n: REVIEWER_PALETTE[k % len(REVIEWER_PALETTE)] for k, n in enumerate(names)}


def _free_spot(boxes: list, x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, int]:
    """Top-left of a w×h label near (x, y) (above first, then below, then further out) that
    overlaps no box in ``boxes``; the chosen box is appended."""
    def clamp(px, py):
        return min(max(2, px), max(2, width - w - 2)), min(max(2, py), max(2, height - h - 2))

    def hits(a):
        return any(a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3] for b in boxes)

    for k in range(0, 12):
        dy = (-(h + 6) - (k // 2) * (h + 4)) if k % 2 == 0 else (6 + (k // 2) * (h + 4))
        px, py = clamp(x - w // 2, y + dy)
        if not hits((px, py, w, h)):
            boxes.append((px, py, w, h))
            return px, py
    px, py = clamp(x - w // 2, y - h - 6)
    boxes.append((px, py, w, h))
    return px, py


def key_frame(frame: np.ndarray, frame_index: int, data: ExportData, *, zoom: float = 1.0) -> np.ndarray:
    """A report key frame: the defect outline and this frame's calipers, numbered as in the
    report's caliper table, one colour per reviewer, labels never overlapping (no banner)."""
    img = to_rgb(frame)
    z = float(zoom)
    if z != 1.0:
        img = cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    thick = 2 if w >= 600 else 1
    scale = max(0.45, min(1.0, w / 1150))
    poly = data.outlines_px.get(int(frame_index))
    if poly and len(poly) >= 3:
        pts = np.round(np.asarray(poly, dtype=float) * z).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, COLOURS["outline"], thick, cv2.LINE_AA)
    colours = reviewer_colours(data)
    boxes: list = []
    todo = []
    for n, m, _read in data.caliper_reads():
        if m.frame_index != frame_index:
            continue
        c = colours.get(m.reviewer or "unnamed", COLOURS["other"])
        p1 = (int(round(m.x1 * z)), int(round(m.y1 * z)))
        p2 = (int(round(m.x2 * z)), int(round(m.y2 * z)))
        cv2.line(img, p1, p2, c, thick, cv2.LINE_AA)
        for p in (p1, p2):
            cv2.drawMarker(img, p, c, cv2.MARKER_CROSS, max(8, int(14 * scale)), thick, cv2.LINE_AA)
        boxes.append((min(p1[0], p2[0]) - 2, min(p1[1], p2[1]) - 2, abs(p2[0] - p1[0]) + 4, abs(p2[1] - p1[1]) + 4))
        todo.append((n, m, c, p1, p2))
    for n, m, c, p1, p2 in todo:
        text = ascii_text(" ".join(t for t in (f"#{n}", _SHORT_ROLE.get(m.role, ""), m.distance.label) if t))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = _free_spot(boxes, (p1[0] + p2[0]) // 2, (p1[1] + p2[1]) // 2, tw + 8, th + base + 8, w, h)
        cv2.rectangle(img, (x, y), (x + tw + 8, y + th + base + 8), (0, 0, 0), -1)
        cv2.rectangle(img, (x, y), (x + tw + 8, y + th + base + 8), c, 1)
        cv2.putText(img, text, (x + 4, y + 4 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, c, 1, cv2.LINE_AA)
    return img


def annotate(frame: np.ndarray, frame_index: int, data: ExportData, *, time_ms: float | None = None,
             zoom: float = 1.0) -> np.ndarray:
    """An RGB copy of ``frame`` with the export's annotations burned in.

    Parameters
    ----------
    frame
        H×W or H×W×3 uint8.
    frame_index
        0-based index of this frame in the loop (shown 1-based).
    data
        What to draw.
    time_ms
        Time of this frame from the loop start, ms (shown in s).
    zoom
        Draw on the frame enlarged by this factor (sharper text and lines for small frames).
    """
    img = to_rgb(frame)
    z = float(zoom)
    if z != 1.0:
        img = cv2.resize(img, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    scale = max(0.35, min(1.2, w / 1100))
    thick = 1 if w < 700 else 2
    rest, con = data.key_frames
    # defect outline
    poly = data.outlines_px.get(int(frame_index))
    if poly and len(poly) >= 3:
        pts = np.round(np.asarray(poly, dtype=float) * z).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, COLOURS["outline"], thick, cv2.LINE_AA)
    # calipers
    for m in data.measurements:
        own = m.frame_index == frame_index
        c = COLOURS.get(m.role, COLOURS["other"])
        c = c if own else _dim(c)
        p1 = (int(round(m.x1 * z)), int(round(m.y1 * z)))
        p2 = (int(round(m.x2 * z)), int(round(m.y2 * z)))
        cv2.line(img, p1, p2, c, thick + (1 if own else 0), cv2.LINE_AA)
        r = max(4, int(6 * scale * 2))
        for p in (p1, p2):
            cv2.drawMarker(img, p, c, cv2.MARKER_CROSS, r, thick + (1 if own else 0), cv2.LINE_AA)
        if own:
            label = f"{m.label + ': ' if m.label else ''}{m.distance.label}"
            mx, my = (p1[0] + p2[0]) // 2, (p1[1] + p2[1]) // 2
            _text(img, label, (min(max(4, mx - 40), w - 10), max(14, my - 8)), scale * 0.8, c, 1)
    # flag banner (top) and marks
    y = int(22 * scale * 1.6)
    if data.finding and data.finding.get("classification"):
        cls = CLASS_TEXT.get(data.finding["classification"], data.finding["classification"])
        src = "automatic" if data.automatic or data.finding.get("kind") == "automatic" else data.finding.get("status", "draft")
        _text(img, f"{cls} ({src}; flag for review)", (8, y), scale * 0.8, COLOURS["flag"], 1)
    tag = "REST" if frame_index == rest else "CONTRACTION" if frame_index == con else ""
    if tag:
        _text(img, tag, (8, y * 2), scale * 0.9, COLOURS[LABEL_REST if tag == "REST" else LABEL_CONTRACTION], thick)
    counter = f"frame {frame_index + 1}/{data.n_frames}"
    if time_ms is not None:
        counter += f"  {time_ms / 1000:.2f} s"
    _text(img, counter, (8, h - 10), scale * 0.8, COLOURS["text"], 1)
    return img
