"""Text stays text outside the browser: the escaping helper and the PDF report (issue 12, item 3)."""

from __future__ import annotations

import re
import warnings
import zlib

import pytest

import msus
from conftest import DATA
from msus.ui.text import html, md, md_rows

PAYLOADS = ["![x](http://127.0.0.1:9/x.png)", "[click](http://127.0.0.1:9/l)", "http://127.0.0.1:9/a",
            "www.example.org", "mail@example.org", '<img src="http://127.0.0.1:9/h.png">', "**bold** _it_ `code`",
            ":red[alarm] $x^2$", "# heading", "1. list", "| a | b |"]


def _unescape(s: str) -> str:
    """What CommonMark renders from backslash escapes (and the invisible word joiner removed)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", s).replace("\u2060", "").replace("  \n", "\n")


@pytest.mark.parametrize("text", PAYLOADS)
def test_md_escapes_every_markdown_construct(text):
    out = md(text)
    assert _unescape(out) == text  # the user reads exactly what was typed
    assert not re.search(r"(?<!\\)[\[\]*`<>|$~]", out)  # no active Markdown character is left
    assert not re.match(r"\s*([#>+=-]|\d+[.)])", out)  # nor block syntax at the start
    assert "://" not in out.replace("\\", "") and "www." not in out.lower().replace("\\", "")  # no autolink
    assert "@" not in out.replace("@\u2060", "")


def test_md_keeps_lines_and_html_escapes():
    assert md("a\nb") == "a  \nb" and md(None) == "" and md(3.5) == "3.5" and md("b_c.dcm caliper(s)") == "b_c.dcm caliper(s)"
    assert html('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert md_rows([{"a": "[x](y)", "n": 2}]) == [{"a": "\\[x\\](y)", "n": 2}]


def _inflate(stream: bytes) -> bytes:
    """A reportlab content stream (ASCII85 + Flate) as its drawing operators."""
    import base64

    s = stream.strip()
    try:
        return zlib.decompress(base64.a85decode(s[:-2] if s.endswith(b"~>") else s))
    except Exception:
        return b""


def test_pdf_report_prints_markup_as_text(tmp_path, monkeypatch):
    from msus.export import from_cine, report
    from msus.export.report import write_pdf
    from msus.measure import make_measurement

    monkeypatch.setattr(report, "_fonts", lambda: ("Helvetica", "Helvetica-Bold"))  # text readable in the PDF stream

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cine = msus.load(DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm")
    evil = '<a href="http://127.0.0.1:9/pdf">Dr <b>Evil</b></a> <img src="http://127.0.0.1:9/p.png"/> &amp;'
    try:
        m = make_measurement(cine.calibration_for(0), 0, (300, 300), (372, 300), label=evil, reviewer=evil)
        finding = {"classification": "partial", "reasons": [evil], "status": "draft", "kind": "manual", "reviewer": evil}
        data = from_cine(cine, measurements=(m,), finding=finding)
        blob = write_pdf(cine, data, tmp_path / "r.pdf").read_bytes()
    finally:
        cine.close()
    assert b"/URI" not in blob and b"/Link" not in blob  # no live link in the PDF
    text = b"".join(_inflate(s) for s in re.findall(rb"stream\r?\n(.*?)endstream", blob, re.S)).replace(b") Tj (", b"")
    assert b"<a href=\"http://127.0.0.1:9/pdf\">Dr <b>Evil</b></a>" in text  # the markup printed as characters
    assert b"&amp;" in text
