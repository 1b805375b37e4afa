"""One-page PDF report (reportlab): key frames side by side, measurements, the flag, reviewer, time.

The key frames are the finding's rest and contraction frames (else the labelled calipers'
frames, else the first and middle frame), annotated as in the video.  An automatic result is
headed "AUTOMATIC ANALYSIS — not reviewed".  Lengths are in mm only when calibrated, each with
its calibration source; the flag is always "a flag for review, not a diagnosis".
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2

from msus.errors import ExportError
from msus.export import DISCLAIMER, ExportData
from msus.export.atomic import write_atomic
from msus.export.overlay import CLASS_TEXT, annotate

MAX_ROWS = 18
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)


def _fonts() -> tuple[str, str]:
    """(regular, bold) font names: DejaVu when installed (has Δ, ≥), else Helvetica."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path in _FONT_CANDIDATES:
        p = Path(path)
        if p.exists():
            bold = p.with_name(p.stem + "-Bold" + p.suffix)
            try:
                if "MsusSans" not in pdfmetrics.getRegisteredFontNames():
                    pdfmetrics.registerFont(TTFont("MsusSans", str(p)))
                    pdfmetrics.registerFont(TTFont("MsusSans-Bold", str(bold if bold.exists() else p)))
                return "MsusSans", "MsusSans-Bold"
            except Exception:
                continue
    return "Helvetica", "Helvetica-Bold"


def _safe(s, unicode_ok: bool) -> str:
    from xml.sax.saxutils import escape

    s = str(s)
    if not unicode_ok:
        s = s.replace("Δ", "delta ").replace("≥", ">=").replace("≤", "<=")
    return escape(s)


def _key_frames(cine, data: ExportData) -> list[tuple[str, int]]:
    rest, con = data.key_frames
    out = []
    if rest is not None:
        out.append(("rest", int(rest)))
    if con is not None:
        out.append(("contraction", int(con)))
    if not out:
        frames = sorted({m.frame_index for m in data.measurements})[:2]
        out = [(f"frame {f + 1}", f) for f in frames] or [("first frame", 0)]
        if len(out) == 1 and cine.n_frames > 1:
            out.append(("middle frame", cine.n_frames // 2))
    return out[:2]


def pdf_bytes(cine, data: ExportData) -> bytes:
    """The one-page report as PDF bytes."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font, bold = _fonts()
    uni = font != "Helvetica"
    S = lambda s: _safe(s, uni)  # noqa: E731
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=10.5)
    small = ParagraphStyle("small", parent=base, fontSize=7, leading=8.5, textColor=colors.grey)
    h1 = ParagraphStyle("h1", parent=base, fontName=bold, fontSize=14, leading=17)
    flag = ParagraphStyle("flag", parent=base, fontName=bold, fontSize=11, leading=14, textColor=colors.HexColor("#b00020"))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title="msus report", author="msus")
    width = A4[0] - 28 * mm
    story = [Paragraph("Muscle ultrasound cine review — report", h1)]
    f = data.finding or {}
    status = "AUTOMATIC ANALYSIS — not reviewed" if data.automatic else f"status: {f.get('status', 'no finding')}"
    who = ", ".join(data.reviewers) or "—"
    cal = data.calibration or {}
    story.append(Paragraph(S(
        f"Loop: {data.source_name or data.loop_key[:24]} · {data.n_frames} frames · {data.fps or 0:.3g} fps · "
        f"calibration: {cal.get('source', 'none')} · reviewer(s): {who} · {status} · exported {data.exported_at}"
    ), base))
    story.append(Spacer(1, 3 * mm))
    if f.get("classification"):
        story.append(Paragraph(S(f"{CLASS_TEXT.get(f['classification'], f['classification'])} — {DISCLAIMER}"), flag))
        for r in f.get("reasons") or ():
            story.append(Paragraph(S(f"• {r}"), base))
    else:
        story.append(Paragraph("No finding recorded.", base))
    story.append(Spacer(1, 3 * mm))
    # key frames
    cells, captions = [], []
    col_w = (width - 4 * mm) / 2
    for name, i in _key_frames(cine, data):
        zoom = max(1.0, min(3.0, 900.0 / cine.columns))  # small frames: draw larger for legible labels
        img = annotate(cine.frame(i), i, data, time_ms=float(cine.frame_times_ms[i]), zoom=zoom)
        ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ExportError("could not encode a key frame")
        h = col_w * img.shape[0] / img.shape[1]
        if h > 95 * mm:
            h = 95 * mm
        cells.append(Image(io.BytesIO(png.tobytes()), width=h * img.shape[1] / img.shape[0], height=h))
        captions.append(Paragraph(S(f"{name}: frame {i + 1} ({cine.frame_times_ms[i] / 1000:.2f} s)"), base))
    story.append(Table([cells, captions], colWidths=[col_w] * len(cells)))
    story.append(Spacer(1, 3 * mm))
    # finding numbers
    if f:
        def mmv(k):
            v = f.get(k)
            return "—" if v is None else f"{v:.2f} mm"
        frac = f.get("defect_thickness_fraction")
        rows = [["gap at rest", "gap at contraction", "retraction (Δgap)", "defect thickness"],
                [mmv("gap_rest_mm"), mmv("gap_contraction_mm"), mmv("retraction_mm"), "—" if frac is None else f"{frac * 100:.0f} %"]]
        t = Table([[Paragraph(S(c), base) for c in r] for r in rows], colWidths=[width / 4] * 4)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
        story += [t, Spacer(1, 3 * mm)]
    # calipers
    head = ["label", "frame", "length", "calibration", "reviewer", "kind"]
    rows = [head]
    for m in data.measurements[:MAX_ROWS]:
        d = m.distance
        calib = {"us_region": "US region", "pixel_spacing": "PixelSpacing", "manual": "manual", "none": "uncalibrated"}.get(
            d.calibration_source, d.calibration_source) + (f" #{d.region_index}" if d.region_index is not None else "")
        if d.mm_per_px_x:
            calib += f" ({d.mm_per_px_x:.4f} mm/px)"
        rows.append([m.label or "—", str(m.frame_index + 1), d.label, calib, m.reviewer or "—", m.kind])
    if len(rows) > 1:
        t = Table([[Paragraph(S(c), base) for c in r] for r in rows], colWidths=[w * width for w in (0.2, 0.09, 0.17, 0.26, 0.16, 0.12)])
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
        story.append(t)
        if len(data.measurements) > MAX_ROWS:
            story.append(Paragraph(S(f"… and {len(data.measurements) - MAX_ROWS} more calipers (see the CSV export)"), small))
    else:
        story.append(Paragraph("No calipers.", base))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(S(f"msus — {DISCLAIMER}. Frame numbers are 1-based. Lengths in mm only where calibrated; "
                             "provenance beside each length."), small))
    try:
        doc.build(story)
    except Exception as exc:  # reportlab layout errors
        raise ExportError(f"could not lay out the report: {exc}") from None
    return buf.getvalue()


def write_pdf(cine, data: ExportData, out) -> Path:
    blob = pdf_bytes(cine, data)
    return write_atomic(out, lambda tmp: tmp.write_bytes(blob))
