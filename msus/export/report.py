"""One-page PDF report (reportlab): status and signer, the flag, the finding's values, key frames.

Reads top to bottom: the status line (DRAFT — not signed / FINAL — signed by … / AMENDED …,
"AUTOMATIC ANALYSIS — not reviewed" when automatic), the flag and its reasons, the headline
values (:func:`msus.record.headline`: the same numbers as the value table and the ``finding``
rows of the caliper table), the key frames (the finding's rest and contraction frames, else the
calipers' frames, else the first and middle frame) drawn once with numbered, non-overlapping
labels in one colour per reviewer and a legend, the calipers with role, note, provenance and what
each is to the finding (finding / second read), and the amendment history.  Frame and region
numbers are 1-based as in the app; lengths in mm only when calibrated.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import cv2

from msus.errors import ExportError
from msus.export import DISCLAIMER, ExportData
from msus.export.atomic import write_atomic
from msus.export.overlay import CLASS_TEXT

logger = logging.getLogger(__name__)

MAX_ROWS = 18
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)


def _fonts() -> tuple[str, str]:
    """(regular, bold) font names: DejaVu when installed (has Δ, ≥), else Helvetica."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    for path in _FONT_CANDIDATES:
        p = Path(path)
        if p.exists():
            bold = p.with_name(p.stem + "-Bold" + p.suffix)
            try:
                if "MsusSans" not in pdfmetrics.getRegisteredFontNames():
                    pdfmetrics.registerFont(TTFont("MsusSans", str(p)))
                    pdfmetrics.registerFont(TTFont("MsusSans-Bold", str(bold if bold.exists() else p)))
                return "MsusSans", "MsusSans-Bold"
            except (OSError, TTFError):
                logger.debug("font %s unusable", p.name, exc_info=True)
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


_CAL_NAMES = {"us_region": "US region", "pixel_spacing": "PixelSpacing", "manual": "manual", "none": "uncalibrated"}
_READ_TEXT = {"finding": "finding", "reader": "reader (not in finding)", "second read": "second read",
              "automatic": "automatic"}


def status_line(data: ExportData) -> str:
    """'FINAL — signed by Dr Bo, 2026-12-02 17:40 UTC', 'DRAFT — not signed', 'AUTOMATIC ANALYSIS — not reviewed'."""
    from msus.record import status_text

    if data.automatic:
        return "AUTOMATIC ANALYSIS — not reviewed"
    if not data.finding:
        return "NO FINDING — calipers only"
    text = status_text(data.finding)
    head, _, rest = text.partition(" ")
    return head.upper() + (" — not signed" if head == "draft" else "") + (" " + rest if rest else "")


def _calibration_text(d) -> str:
    text = _CAL_NAMES.get(d.calibration_source, d.calibration_source)
    if d.region_index is not None:
        text += f" #{d.region_index + 1}"  # 1-based, as in the app
    if d.mm_per_px_x:
        text += f" ({d.mm_per_px_x:.4f} mm/px)"
    return text


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    font, bold = _fonts()
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=10.5)
    return {
        "uni": font != "Helvetica",
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=8.5, textColor=colors.grey),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9),
        "h1": ParagraphStyle("h1", parent=base, fontName=bold, fontSize=14, leading=17),
        "status": ParagraphStyle("status", parent=base, fontName=bold, fontSize=10, leading=13),
        "flag": ParagraphStyle("flag", parent=base, fontName=bold, fontSize=11, leading=14,
                               textColor=colors.HexColor("#b00020")),
        "headline": ParagraphStyle("headline", parent=base, fontName=bold, fontSize=9.5, leading=12),
    }


def _table(rows, widths, st, S, style="base"):
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    t = Table([[Paragraph(S(c), st[style]) for c in r] for r in rows], colWidths=widths)
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                           ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
    return t


def _key_frame_table(cine, data: ExportData, width: float, st, S):
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, Table

    from msus.export.overlay import key_frame

    cells, captions = [], []
    col_w = (width - 4 * mm) / 2
    for name, i in _key_frames(cine, data):
        zoom = max(1.0, min(3.0, 900.0 / cine.columns))  # small frames: draw larger for legible labels
        img = key_frame(cine.frame(i), i, data, zoom=zoom)
        ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ExportError("could not encode a key frame")
        h = min(col_w * img.shape[0] / img.shape[1], 95 * mm)
        cells.append(Image(io.BytesIO(png.tobytes()), width=h * img.shape[1] / img.shape[0], height=h))
        captions.append(Paragraph(S(f"{name}: frame {i + 1} of {data.n_frames} ({cine.frame_times_ms[i] / 1000:.2f} s)"),
                                  st["base"]))
    return Table([cells, captions], colWidths=[col_w] * len(cells))


def _legend(data: ExportData, st, S):
    from reportlab.platypus import Paragraph

    from msus.export.overlay import reviewer_colours

    parts = []
    for name, (r, g, b) in reviewer_colours(data).items():
        what = "automatic" if data.automatic else "finding (reader)" if name == data.reader else "second read"
        parts.append(f'<font color="#{r:02x}{g:02x}{b:02x}">■</font> {S(name)} — {S(what)}')
    return Paragraph("Calipers: " + " · ".join(parts), st["base"]) if parts else None


def _values_table(data: ExportData, width: float, st, S):
    from msus.record import delta_text, length_text

    f = data.finding or {}
    src = (f.get("extra") or {}).get("sources") or {}
    numbers = {m.id: n for n, m, _ in data.caliper_reads()}

    def origin(role):
        s = src.get(role) or {}
        if s.get("source") == "caliper" and s.get("measurement_id") in numbers:
            return f"caliper #{numbers[s['measurement_id']]} ({s.get('kind')})"
        return "automatic analysis" if f.get("gap_rest_mm") is not None or f.get("gap_rest_px") is not None else "—"

    frac = f.get("defect_thickness_fraction")
    d_px = None if None in (f.get("gap_rest_px"), f.get("gap_contraction_px")) else f["gap_contraction_px"] - f["gap_rest_px"]
    rows = [["", "gap at rest", "gap at contraction", "retraction (Δgap)", "defect thickness"],
            ["value", length_text(f.get("gap_rest_mm"), f.get("gap_rest_px")),
             length_text(f.get("gap_contraction_mm"), f.get("gap_contraction_px")),
             delta_text(f.get("retraction_mm"), d_px), "—" if frac is None else f"{frac * 100:.0f} %"],
            ["from", origin("gap at rest"), origin("gap at contraction"), "contraction − rest", "automatic analysis"]]
    return _table(rows, [width * w for w in (0.1, 0.225, 0.225, 0.225, 0.225)], st, S)


def _calipers_table(data: ExportData, width: float, st, S):
    from msus.record import length_text

    rows = [["#", "role", "note", "frame", "length", "calibration", "reviewer", "kind", "read"]]
    for n, m, read in data.caliper_reads()[:MAX_ROWS]:
        rows.append([str(n), m.role, m.note or ("" if m.label in ("", m.role) else m.label), str(m.frame_index + 1),
                     length_text(m.length_mm, m.length_px), _calibration_text(m.distance), m.reviewer or "—", m.kind,
                     _READ_TEXT.get(read, read)])
    return _table(rows, [w * width for w in (0.03, 0.13, 0.10, 0.075, 0.105, 0.165, 0.12, 0.155, 0.12)], st, S, "cell")


def _history(data: ExportData) -> list[str]:
    from msus.record import headline

    f = data.finding or {}
    out = []
    for v in f.get("history") or ():
        n = int(v.get("amendment_no") or 0) + 1
        when = (v.get("signed_at") or "")[:16].replace("T", " ")
        said = headline(v)
        out.append(f"version {n}: {v.get('status')}, signed by {v.get('signed_by') or '?'}"
                   + (f" {when} UTC" if when else "") + (f" — {said}" if said else "") + "; replaced by the amendment")
    if int(f.get("amendment_no") or 0):
        out.append(f"version {int(f['amendment_no']) + 1} (this report): amends version {int(f['amendment_no'])}"
                   + (f" — reason: {f.get('amendment_reason')}" if f.get("amendment_reason") else ""))
    return out


def pdf_bytes(cine, data: ExportData) -> bytes:
    """The one-page report as PDF bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    from msus.record import headline

    st = _styles()
    S = lambda s: _safe(s, st["uni"])  # noqa: E731
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title="msus report", author="msus")
    width = A4[0] - 28 * mm
    f = data.finding or {}
    cal = data.calibration or {}
    story = [Paragraph("Muscle ultrasound cine review — report", st["h1"]), Paragraph(S(status_line(data)), st["status"])]
    story.append(Paragraph(S(
        f"Loop: {data.source_name or data.loop_key[:24]} · {data.n_frames} frames · {data.fps or 0:.3g} fps · "
        f"calibration: {cal.get('source', 'none')} · reader: {data.reader or '—'} · "
        f"reviewer(s): {', '.join(data.reviewers) or '—'} · exported {data.exported_at}"), st["base"]))
    story.append(Spacer(1, 2 * mm))
    if f.get("classification"):
        story.append(Paragraph(S(f"{CLASS_TEXT.get(f['classification'], f['classification'])} — {DISCLAIMER}"), st["flag"]))
        if headline(f):
            story.append(Paragraph(S(headline(f)), st["headline"]))
        story += [Paragraph(S(f"• {r}"), st["base"]) for r in f.get("reasons") or ()]
    else:
        story.append(Paragraph("No finding recorded.", st["base"]))
    story += [Spacer(1, 2 * mm), _key_frame_table(cine, data, width, st, S)]
    legend = _legend(data, st, S)
    if legend is not None:
        story.append(legend)
    story.append(Spacer(1, 2 * mm))
    if f:
        story += [_values_table(data, width, st, S), Spacer(1, 2 * mm)]
    if data.measurements:
        story.append(_calipers_table(data, width, st, S))
        if len(data.measurements) > MAX_ROWS:
            story.append(Paragraph(S(f"… and {len(data.measurements) - MAX_ROWS} more calipers (see the CSV export)"),
                                   st["small"]))
    else:
        story.append(Paragraph("No calipers.", st["base"]))
    history = _history(data)
    if history:
        story.append(Spacer(1, 2 * mm))
    story += [Paragraph(S(line), st["base"]) for line in history]
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(S(f"msus — {DISCLAIMER}. Frame and region numbers are 1-based. Lengths in mm only where "
                             "calibrated; provenance beside each length. Second reads (other reviewers' calipers) are "
                             "for agreement and never enter the finding."), st["small"]))
    try:
        doc.build(story)
    except Exception as exc:  # reportlab layout errors
        logger.debug("pdf_bytes: reportlab layout errors", exc_info=True)
        raise ExportError(f"could not lay out the report: {exc}") from exc
    return buf.getvalue()


def write_pdf(cine, data: ExportData, out) -> Path:
    blob = pdf_bytes(cine, data)
    return write_atomic(out, lambda tmp: tmp.write_bytes(blob))
