"""One value everywhere, a locked signature and an amendment, in Chromium against `streamlit run app.py`.

Ana analyses the full-tear phantom, accepts both gaps and drags the contraction caliper's end;
the finding panel, the Δgap card, the PDF (its text) and the SR (read back) must say the same
gaps.  She signs (with the confirmation step); a drag is then refused with one line and nothing
moves; she amends with a reason, drags, signs again: "amended" in the app and the PDF, and the
audit log holds create → finalize → amend → finalize.  Screenshots go to ``artifacts/signing/``.
"""

from __future__ import annotations

import io
import re
import shutil

import pytest
from playwright.sync_api import expect

from conftest import ROOT, SAMPLES, require_binary
from browser import chromium, main_text, new_page, no_traceback, rerun, screen, settle, streamlit_server
from test_browser_walks import calipers, click_button, export, set_reviewer

pytestmark = pytest.mark.browser

ART = ROOT / "artifacts" / "signing"
HEADLINE = re.compile(r"Gap (\d+\.\d\d) mm at rest \(frame (\d+)\) → (\d+\.\d\d) mm at contraction \(frame (\d+)\), "
                      r"Δgap ([+-]\d+\.\d\d) mm")


@pytest.fixture
def site(tmp_path):
    require_binary("chromium")
    samples, data = tmp_path / "sign_samples", tmp_path / "sign_data"
    samples.mkdir()
    data.mkdir()
    shutil.copy(SAMPLES / "phantom_full_tear.dcm", samples / "phantom_full_tear.dcm")
    ART.mkdir(parents=True, exist_ok=True)
    with streamlit_server(samples, data) as url, chromium() as b:
        pg = new_page(b, url)
        yield pg, data
        pg.close()


def shot(pg, name, at=None):
    if at is not None:
        pg.get_by_text(at, exact=True).first.scroll_into_view_if_needed()
    pg.screenshot(path=str(ART / f"{name}.png"))


def drag_end(pg, cal, dx):
    """Drag the caliper's first end ``dx`` image px along x in the contraction panel."""
    pg.locator(".mp-canvas").scroll_into_view_if_needed()
    (x, y), (x2, y2) = screen(pg, cal["p1"], 1), screen(pg, [cal["p1"][0] + dx, cal["p1"][1]], 1)
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move((x + x2) / 2, y, steps=3)
    pg.mouse.move(x2, y2, steps=3)
    pg.mouse.up()
    settle(pg)  # the player's events are acknowledged by the run they started


def contraction_caliper(pg):
    return next(c for c in calipers(pg) if c["role"] == "gap at contraction")


def headline(pg):
    m = HEADLINE.search(main_text(pg))
    assert m, main_text(pg)[:2000]
    return m


def delta_card(pg) -> str:
    return pg.locator("[data-testid=stMetricValue]").first.inner_text().strip()


def pdf_text(path) -> str:
    pdfium = pytest.importorskip("pypdfium2")
    doc = pdfium.PdfDocument(path.read_bytes())
    assert len(doc) == 1
    return " ".join(doc[0].get_textpage().get_text_range().split())


def sr_values(path) -> dict:
    import highdicom as hd

    sr = hd.sr.srread(io.BytesIO(path.read_bytes()))
    out = {}
    for g in sr.content.get_image_measurement_groups():
        for n in g.get_measurements():
            out.setdefault(n.name.meaning, float(n.value))
    return out, sr


def test_edit_then_the_same_gaps_in_finding_card_pdf_and_sr(site, tmp_path):
    pg, data = site
    set_reviewer(pg, "Ana Sono")
    with rerun(pg, timeout_ms=120_000):
        pg.get_by_role("button", name="Analyze").click()
    expect(pg.locator("[data-testid=stMain]")).to_contain_text("Flag: suspected full thickness", timeout=90_000)
    for key in ("rest_frame", "contraction_frame"):  # the suggested frames become the pair
        click_button(pg, pg.locator(f".st-key-msus_acc_{key} button"))
    for k, key in enumerate(("gap_rest", "gap_contraction")):
        click_button(pg, pg.locator(f".st-key-msus_acc_{key} button"))
        pg.wait_for_function(f"window.__msusPlayer.data.calipers.length === {k + 1}")
    click_button(pg, pg.get_by_text("Rest | Contraction", exact=True))
    pg.wait_for_function("window.__msusPlayer.panelFrames().length >= 2")  # the player has drawn the pair
    assert [p["frame"] for p in pg.evaluate("window.__msusPlayer.panelFrames()")][:2] == [
        next(c["frame"] for c in calipers(pg) if c["role"] == r) for r in ("gap at rest", "gap at contraction")]
    before = contraction_caliper(pg)
    drag_end(pg, before, -4.0)  # 0.48 mm: the reviewer's edit
    con = contraction_caliper(pg)
    con_mm = float(con["text"].split()[0])
    assert con["id"] == before["id"] and abs(con_mm - float(before["text"].split()[0]) - 0.48) < 0.1
    rest_mm = float(next(c for c in calipers(pg) if c["role"] == "gap at rest")["text"].split()[0])
    shapes = pg.evaluate("window.__msusPlayer.data.shapes")  # the analysis' caliper on that frame: replaced
    assert any(s["label"] == "automatic (replaced)" for s in shapes if s["frame"] == con["frame"])
    assert not any(re.fullmatch(r"\d+\.\d mm", s["label"] or "") for s in shapes if s["frame"] == con["frame"])
    h = headline(pg)
    assert (float(h[1]), float(h[3])) == (rest_mm, con_mm)  # the finding reads the edited caliper
    delta = float(h[5])
    assert delta == pytest.approx(con_mm - rest_mm, abs=0.011)
    assert delta_card(pg) == h[5] + " mm"  # the Δgap card: the same value
    shot(pg, "s01_edited")
    shot(pg, "s01_edited_finding", at="Finding")
    export(pg, "One-page PDF", tmp_path / "draft.pdf")
    text = pdf_text(tmp_path / "draft.pdf")
    assert h[0] in text and "DRAFT — not signed" in text
    export(pg, "DICOM SR", tmp_path / "draft.dcm")
    values, sr = sr_values(tmp_path / "draft.dcm")
    assert round(values["Muscle gap at rest"], 2) == float(h[1])
    assert round(values["Muscle gap at contraction"], 2) == float(h[3])
    assert round(values["Gap retraction on contraction"], 2) == delta and sr.VerificationFlag == "UNVERIFIED"
    no_traceback(pg)
    signed_is_locked_and_changes_only_by_amendment(pg, data, tmp_path)


def signed_is_locked_and_changes_only_by_amendment(pg, data, tmp_path):
    from msus.store import open_store

    signed = headline(pg)
    click_button(pg, pg.get_by_role("button", name="Mark final"))
    expect(pg.locator("[data-testid=stMain]")).to_contain_text("Sign this finding as Ana Sono")
    click_button(pg, pg.get_by_role("button", name="Sign as final"))
    expect(pg.locator("[data-testid=stMain]")).to_contain_text(re.compile(r"final \(signed by Ana Sono, [\d-]+ [\d:]+ UTC\)"))
    con = contraction_caliper(pg)
    drag_end(pg, con, -4.0)
    expect(pg.locator("[data-testid=stMain]")).to_contain_text("amend the finding to change them")
    assert contraction_caliper(pg)["text"] == con["text"] and headline(pg)[0] == signed[0]  # nothing moved
    shot(pg, "s02_signed_locked")
    export(pg, "One-page PDF", tmp_path / "final.pdf")
    text = pdf_text(tmp_path / "final.pdf")
    assert signed[0] in text and "FINAL (signed by Ana Sono" in text
    pg.get_by_text("Amend this finding", exact=True).click()  # an expander: opens without a run
    box = pg.get_by_role("textbox", name="Reason for the amendment")
    with rerun(pg):
        box.fill("contraction end on the last intact fibre")
        box.press("Enter")
    click_button(pg, pg.get_by_role("button", name="Amend", exact=True))
    expect(pg.locator("[data-testid=stMain]")).to_contain_text(
        "draft — version 2, amends version 1: contraction end on the last intact fibre")
    drag_end(pg, contraction_caliper(pg), -4.0)
    amended = headline(pg)
    assert float(amended[3]) == float(contraction_caliper(pg)["text"].split()[0]) != float(signed[3])
    click_button(pg, pg.get_by_role("button", name="Mark final"))
    click_button(pg, pg.get_by_role("button", name="Sign as final"))
    expect(pg.locator("[data-testid=stMain]")).to_contain_text(re.compile(r"amended \(signed by Ana Sono"))
    assert delta_card(pg) == amended[5] + " mm"
    shot(pg, "s03_amended", at="Finding")
    export(pg, "One-page PDF", tmp_path / "amended.pdf")
    text = pdf_text(tmp_path / "amended.pdf")
    assert amended[0] in text and "AMENDED (signed by Ana Sono" in text and "version 1: final" in text
    export(pg, "DICOM SR", tmp_path / "amended.dcm")
    values, sr = sr_values(tmp_path / "amended.dcm")
    assert round(values["Muscle gap at contraction"], 2) == float(amended[3]) and sr.VerificationFlag == "VERIFIED"
    assert len(sr.PredecessorDocumentsSequence) == 1
    store = open_store(f"sqlite:///{data / 'msus.sqlite3'}")
    try:
        log = [e.action for e in store.audit() if e.entity == "finding" and e.action != "recompute"]
        assert log == ["create", "finalize", "amend", "finalize"]
    finally:
        store.close()
    no_traceback(pg)
