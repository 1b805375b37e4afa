"""The three users (a sonographer, a physician, a teacher; docs/app.md "The three walks") in Debian Chromium against `streamlit run app.py`.

Every test is independent: its own Streamlit server (a fresh findings store, a samples folder
with the full-tear phantom) and its own page.  The physician's walk starts from a finding and
calipers the sonographer saved, written into his store through the library before his server
starts.  Assertions are on what the user sees (frame counter, gaps in mm, the flag's reasons, the
caliper after a reload, the one-line error of a bad upload); every wait is on state
(``tests/browser.py``), never on time.  Screenshots go to ``artifacts/walks/`` (gitignored).
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from browser import (PLAYER_READY, alerts, choose, chromium, main_text, new_page, no_traceback, rerun, screen,
                     settle, streamlit_server)
from conftest import DATA, ROOT, SAMPLES, require_binary

pytestmark = pytest.mark.browser

ART = ROOT / "artifacts" / "walks"
VIDEO = DATA / "p6_isokinetic120_01_push_02.mp4"
CX50 = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"  # scanner caliper 10.6 mm (tests/data/NOTICE.md)
PHANTOM = "phantom_full_tear.dcm"


@pytest.fixture(scope="module")
def browser():
    require_binary("chromium")
    ART.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        yield b


@pytest.fixture
def folders(tmp_path):
    samples, data = tmp_path / "samples", tmp_path / "data"
    samples.mkdir()
    data.mkdir()
    for name in (PHANTOM, "phantom_full_tear.truth.json"):
        shutil.copy(SAMPLES / name, samples / name)
    return samples, data, f"sqlite:///{data / 'findings.sqlite3'}"


@pytest.fixture
def server(folders):
    samples, data, db = folders
    with streamlit_server(samples, data, env={"MSUS_DATABASE_URL": db}) as url:
        yield url


@pytest.fixture
def page(browser, server):
    pg = new_page(browser, server)
    yield pg
    pg.close()


# ---- helpers: wait for what the user waits for ---------------------------------------------------
def shot(pg, name):
    pg.screenshot(path=str(ART / f"{name}.png"))


def frame(pg) -> int:
    return pg.evaluate("window.__msusPlayer.frame")


def counter(pg) -> str:
    return pg.locator(".mp-counter").inner_text()


def set_reviewer(pg, name):
    side = pg.locator("section[data-testid=stSidebar]")
    box = side.get_by_role("textbox", name="…or your name")
    with rerun(pg):
        box.fill(name)
        box.press("Enter")
    expect(side).to_contain_text(f"Reviewer: {name}")


def calipers(pg) -> list[dict]:
    return pg.evaluate("window.__msusPlayer.data.calipers")


def click_button(pg, locator):
    """Click a Streamlit button (after the page has settled) and wait for the run it starts to end.
    Playwright's strict mode fails the click if the button is on the page twice: the app keeps its
    rows in fixed slots, so a keyed button never moves (docs/app.md, "the analysis panel")."""
    settle(pg)
    with rerun(pg):
        locator.click()


def export(pg, option, path):
    settle(pg)
    live = ".st-key-msus_export_format:not([data-stale=true])"  # not a leftover of the previous run
    if not pg.locator(live).is_visible():
        pg.get_by_text("Export", exact=True).first.click()
        expect(pg.locator(live)).to_be_visible()
    fmt = pg.locator(live)  # a radio: the first format starting with ``option``
    settle(pg)
    radio = fmt.get_by_role("radio", name=re.compile("^" + re.escape(option))).first
    if not radio.is_checked():  # a click on the chosen one starts no run
        with rerun(pg):
            fmt.get_by_text(re.compile("^" + re.escape(option))).first.click()
    expect(radio).to_be_checked()
    click_button(pg, pg.locator(".st-key-msus_export_go button"))
    with pg.expect_download() as dl:
        pg.locator(".st-key-msus_export_dl button").click()
    dl.value.save_as(path)
    return dl.value.suggested_filename


def step(pg, key, to_frame):
    """Press ``key`` until the player shows ``to_frame`` (0-based)."""
    while frame(pg) != to_frame:
        before = frame(pg)
        pg.keyboard.press(key)
        assert frame(pg) != before, f"{key} did not step"


# ---- (a) the sonographer ------------------------------------------------------------------------
def test_sonographer_marks_analyzes_drags_reloads_and_exports(page, tmp_path):
    import pydicom

    sono = page
    # marks rest and contraction with keys
    shot(sono, "a01_opened")
    assert counter(sono).startswith("1 / 40")
    assert "0.1200" in sono.locator(".mp-hud-br").inner_text()  # calibration badge on the image
    set_reviewer(sono, "Ana Sono")
    sono.locator(".mp-counter").click()  # focus the player
    sono.keyboard.press("Space")
    sono.wait_for_function("window.__msusPlayer.frame >= 6", timeout=10_000)
    sono.keyboard.press("Space")
    assert not sono.evaluate("window.__msusPlayer.playing")
    step(sono, "ArrowLeft", 4)  # back to the stillest frame (frame 5 of the phantom)
    assert counter(sono).startswith("5 / 40") and "Frame 5 / 40" in sono.locator(".mp-hud-tl").inner_text()
    sono.keyboard.press("r")
    for _ in range(16):  # forward to the widest separation (frame 21)
        sono.keyboard.press("ArrowRight")
    assert counter(sono).startswith("21 / 40 · 1250.0 ms")
    sono.keyboard.press("c")
    settle(sono)  # the mark and the settled frame are acknowledged
    expect(sono.locator("[data-testid=stMain]")).to_contain_text(re.compile(r"Rest: 5\s+Contraction: 21"))
    shot(sono, "a02_marked")

    # analyzes right after a step: the frame report's rerun interrupts the click's run; the click survives
    sono.locator(".mp-counter").click()
    sono.keyboard.press("ArrowLeft")
    sono.keyboard.press("ArrowRight")
    sono.get_by_role("button", name="Analyze").click()
    expect(sono.locator("[data-testid=stMain]")).to_contain_text("Flag: suspected full thickness", timeout=60_000)
    settle(sono)
    text = main_text(sono)
    assert "Suspected full-thickness tear" in text
    assert "defect spans" in text and "gap widens" in text  # the flag's reasons
    gaps = re.findall(r"Gap at (rest|contraction) (\d+\.\d+) mm", text)
    assert [g[0] for g in gaps] == ["rest", "contraction"]
    rest_mm, con_mm = (float(g[1]) for g in gaps)
    assert 3.5 < rest_mm < 6.5 and 8.5 < con_mm < 11.5  # phantom truth 5 -> 10 mm
    with rerun(sono):
        sono.get_by_text("Rest | Contraction", exact=True).click()
    sono.wait_for_function("window.__msusPlayer.panelFrames().length >= 2")  # the player has drawn the pair
    assert [p["frame"] for p in sono.evaluate("window.__msusPlayer.panelFrames()")] == [4, 20]
    sono.locator(".mp-canvas").scroll_into_view_if_needed()
    shot(sono, "a03_analyzed_pair")
    no_traceback(sono)

    # accepts the suggested gaps (calipers to edit), drags one end 0.3 mm, labels it
    for k, key in enumerate(("gap_rest", "gap_contraction")):
        click_button(sono, sono.locator(f".st-key-msus_acc_{key} button"))
        sono.wait_for_function(f"window.__msusPlayer.data.calipers.length === {k + 1}")
    con = next(c for c in calipers(sono) if c["frame"] == 20)
    before = float(con["text"].split()[0])
    sono.locator(".mp-canvas").scroll_into_view_if_needed()
    (x, y), (x2, y2) = screen(sono, con["p1"], 1), screen(sono, [con["p1"][0] - 2.5, con["p1"][1]], 1)  # 0.3 mm
    with rerun(sono):
        sono.mouse.move(x, y)
        sono.mouse.down()
        sono.mouse.move((x + x2) / 2, y, steps=3)
        sono.mouse.move(x2, y2, steps=3)
        sono.mouse.up()
    moved = next(c for c in calipers(sono) if c["id"] == con["id"])
    after = float(moved["text"].split()[0])
    assert moved["text"].endswith(" mm") and 0.2 < after - before < 0.4
    shot(sono, "a04_dragged")
    sono.get_by_text("Free-text note").click()
    rows = [c["id"] for c in calipers(sono)]
    choose(sono, "msus_free_row", str(rows.index(con["id"]) + 1))
    label = "fibre end to fibre end"
    with rerun(sono):
        sono.locator(".st-key-msus_free_text input").fill(label)
        sono.locator(".st-key-msus_free_text input").press("Enter")
    click_button(sono, sono.locator(".st-key-msus_free_apply button"))
    shot(sono, "a05_labelled")

    # reloads: the caliper, its label and the page's reviewer come back
    sono.reload()
    sono.wait_for_function(PLAYER_READY, timeout=60_000)
    settle(sono)
    back = {c["id"]: c for c in calipers(sono)}
    assert back[con["id"]]["note"] == label and back[con["id"]]["text"] == moved["text"]
    assert back[con["id"]]["role"] == back[con["id"]]["label"] == "gap at contraction"  # a note never changes the role
    assert "restored 2 saved caliper(s) of Ana Sono" in main_text(sono)
    sono.wait_for_function("window.__msusPlayer.frame === 4")  # opens on the first saved caliper's frame
    assert counter(sono).startswith("5 / 40")
    shot(sono, "a06_reloaded")
    no_traceback(sono)

    # sees the saved flag and exports the SR
    text = main_text(sono)
    assert re.search(r"suspected full thickness — draft, automatic-edited, by Ana Sono", text)  # her drag is the value
    assert re.search(r"Gap \d+\.\d\d mm at rest \(frame 5\) → \d+\.\d\d mm at contraction \(frame 21\)", text)
    assert "defect spans" in text
    name = export(sono, "DICOM SR", tmp_path / "sr.dcm")
    assert name.endswith(".dcm")
    ds = pydicom.dcmread(tmp_path / "sr.dcm")
    assert ds.Modality == "SR"
    sono.locator(".st-key-msus_export_dl").scroll_into_view_if_needed()
    shot(sono, "a07_sr_export")
    no_traceback(sono)


# ---- (b) the physician --------------------------------------------------------------------------
def seed_sonographer(samples, db) -> dict:
    """What Ana Sono's walk leaves in the store: the analysis as a draft finding, her two gap calipers."""
    import msus
    from msus.analysis import analyze
    from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement, now_iso
    from msus.store import open_store
    from msus.ui.store_panels import _finding_dict

    cine = msus.load(samples / PHANTOM)
    result = analyze(cine, rest_frame=4, contraction_frame=20)
    store = open_store(db)
    ref = store.register_loop(cine)
    store.save_finding(ref, _finding_dict(result), reviewer="Ana Sono", kind="automatic")
    out = {}
    for i, label in ((4, LABEL_REST), (20, LABEL_CONTRACTION)):
        pts = result.stumps_at(i)
        k = len(pts) // 2
        m = make_measurement(cine.calibration_for(i), i, pts[k // 2], pts[k + k // 2], label=label, kind="automatic")
        store.add_measurement(ref, m, reviewer="Ana Sono")
        out[i] = m
    out["at"] = now_iso()
    return out


@pytest.fixture
def seeded_server(folders):
    samples, data, db = folders
    seeded = seed_sonographer(samples, db)
    with streamlit_server(samples, data, env={"MSUS_DATABASE_URL": db}) as url:
        yield url, seeded


def test_physician_opens_from_the_worklist_adds_a_caliper_and_signs(browser, seeded_server, tmp_path):
    url, seeded = seeded_server
    doctor = new_page(browser, url + "/worklist", player=False, timezone_id="Asia/Tokyo")  # UTC+9, no DST
    try:
        set_reviewer(doctor, "Dr Bo")
        main = doctor.locator("[data-testid=stMain]")
        expect(main).to_contain_text("Worklist")
        table = doctor.locator("[data-testid=stDataFrame]").last
        expect(table).to_be_visible()
        choose(doctor, "msus_wl_flags", "suspected full thickness")  # the flag filter keeps the loop
        expect(main).to_contain_text("1 of 1 loop(s) · times in Asia/Tokyo")
        cells = table.locator("[role=gridcell]").all_inner_texts()
        for want in ("phantom_full_tear.dcm", "draft", "suspected full thickness", "Ana Sono"):
            assert want in cells, cells  # the loop, its flag and who made it
        (when,) = [c for c in cells if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", c)]
        seeded_at = datetime.fromisoformat(seeded["at"]).astimezone(timezone(timedelta(hours=9)))
        assert abs((datetime.fromisoformat(when + ":00+09:00") - seeded_at).total_seconds()) < 120  # local time
        shot(doctor, "b01_worklist")
        with rerun(doctor):
            doctor.get_by_role("button", name="Open in Review").click()  # opens the loop in Review
        doctor.wait_for_function(PLAYER_READY, timeout=60_000)
        settle(doctor)
        assert "/worklist" not in doctor.url  # on the Review page (the default page, the root URL)
        text = main_text(doctor)
        assert "by Ana Sono" in text and "suspected full thickness" in text  # the finding and who made it
        shapes = doctor.evaluate("window.__msusPlayer.data.shapes")
        hers = [sh for sh in shapes if sh["label"].startswith("Ana Sono: ")]
        assert sorted(sh["frame"] for sh in hers) == [4, 20] and all(sh["label"].endswith(" mm") for sh in hers)
        assert sorted(sh["frame"] for sh in shapes if sh["label"] == "defect (saved, Ana Sono)") == [4, 20]
        toggle = doctor.locator(".st-key-msus_show_0")
        expect(toggle).to_contain_text("Ana Sono (2)")  # a toggle per reviewer, the author named
        label = toggle.get_by_text("Ana Sono (2)")
        cut = label.evaluate("(e) => { const out = []; for (let n = e; n && !n.classList.contains('st-key-msus_show_0');"
                             " n = n.parentElement) if (n.scrollWidth > n.clientWidth + 1) out.push(n.tagName); return out; }")
        assert cut == []  # the whole name shows: no element of the label overflows (no "Ana S…")
        with rerun(doctor):
            toggle.get_by_text("Ana Sono (2)").click()  # off
        assert not [sh for sh in doctor.evaluate("window.__msusPlayer.data.shapes") if sh["label"].startswith("Ana")]
        with rerun(doctor):
            toggle.get_by_text("Ana Sono (2)").click()  # on again
        with rerun(doctor):
            doctor.get_by_text("Rest | Contraction", exact=True).click()
        with rerun(doctor):
            doctor.get_by_text("Difference", exact=True).click()
        doctor.wait_for_function("window.__msusPlayer.panelFrames().length >= 3")  # the pair and the difference drawn
        panels = doctor.evaluate("window.__msusPlayer.panelFrames()")
        assert [p["frame"] for p in panels[:2]] == [4, 20] and panels[2]["kind"] == "difference"  # the saved pair
        doctor.locator(".mp-canvas").scroll_into_view_if_needed()
        doctor.locator(".mp-counter").click()
        (x1, y1), (x2, y2) = screen(doctor, [158, 140], 1), screen(doctor, [238, 141], 1)
        with rerun(doctor):
            doctor.mouse.click(x1, y1)
            doctor.mouse.click(x2, y2)
        doctor.wait_for_function("window.__msusPlayer.data.calipers.length === 1")
        mine = calipers(doctor)
        assert len(mine) == 1 and mine[0]["frame"] == 20 and mine[0]["label"] == "gap at contraction"
        assert re.fullmatch(r"\d+\.\d\d mm", mine[0]["text"])
        shot(doctor, "b02_difference_second_rater")
        click_button(doctor, doctor.get_by_role("button", name="Mark final"))
        click_button(doctor, doctor.get_by_role("button", name="Sign as final"))  # the confirmation step
        expect(main).to_contain_text(re.compile(
            r"suspected full thickness — final \(signed by Dr Bo, [\d-]+ [\d:]+ UTC\), automatic(-edited)?, by Ana Sono"))
        name = export(doctor, "One-page PDF", tmp_path / "report.pdf")
        assert name.endswith(".pdf") and (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
        shot(doctor, "b03_final_pdf")
        no_traceback(doctor)
    finally:
        doctor.close()


# ---- (c) uploads --------------------------------------------------------------------------------
def test_upload_measures_the_scanner_caliper_and_refuses_a_bad_file(page, tmp_path):
    pg = page
    side = pg.locator("section[data-testid=stSidebar]")
    with rerun(pg):
        side.get_by_text("Upload", exact=True).click()
    side.locator("input[type=file]").set_input_files(str(CX50))
    pg.wait_for_function("window.__msusPlayer.n === 2 && window.__msusPlayer.loaded === 2", timeout=60_000)
    settle(pg)
    assert "0.2623" in pg.locator(".mp-hud-br").inner_text()
    pg.locator(".mp-counter").click()
    (x1, y1), (x2, y2) = screen(pg, [459.5, 290.5]), screen(pg, [498.5, 301.5])  # the burned-in crosses
    with rerun(pg):
        pg.mouse.click(x1, y1)
        pg.mouse.click(x2, y2)
    pg.wait_for_function("window.__msusPlayer.data.calipers.length === 1")
    (c,) = calipers(pg)
    assert abs(float(c["text"].split()[0]) - 10.6) <= 0.106 and c["text"].endswith(" mm")
    shot(pg, "c01_uploaded_measured")
    side.locator("input[type=file]").set_input_files(str(VIDEO))  # no calibration in a video: px, marked
    pg.wait_for_function("window.__msusPlayer.data.calibrated === false"
                         " && window.__msusPlayer.loaded === window.__msusPlayer.n", timeout=60_000)
    settle(pg)
    assert "UNCALIBRATED" in pg.locator(".mp-hud-br").inner_text()
    pg.locator(".mp-counter").click()
    (x1, y1), (x2, y2) = screen(pg, [100, 100]), screen(pg, [200, 150])
    with rerun(pg):
        pg.mouse.click(x1, y1)
        pg.mouse.click(x2, y2)
    pg.wait_for_function("window.__msusPlayer.data.calipers.length === 1")
    (c,) = calipers(pg)
    assert c["text"] == "111.8 px (uncalibrated)"
    pg.get_by_text("Measurements", exact=True).scroll_into_view_if_needed()
    shot(pg, "c02_uncalibrated_px")
    bad = tmp_path / "scan.dcm"
    bad.write_text("Patient report, not an image.\n" * 80)
    side.locator("input[type=file]").set_input_files(str(bad))
    error = pg.locator("[data-testid=stMain] [data-testid=stAlert]").filter(has_text="scan.dcm")
    expect(error).to_have_count(1, timeout=30_000)  # the state the user waits for: the error line
    settle(pg)
    expect(pg.locator(".mp-counter")).to_have_count(0)
    shot(pg, "c03_bad_upload")
    errors = [a for a in alerts(pg) if "scan.dcm" in a]
    assert errors == ["scan.dcm: not a DICOM file, video or image msus can read"], alerts(pg)
    no_traceback(pg)


# ---- (d) teaching -------------------------------------------------------------------------------
def test_navigation_opens_teaching(page):
    with rerun(page):
        page.get_by_role("link", name="Teaching").click()
    page.get_by_text("Teaching mode").first.wait_for()
    settle(page)
    shot(page, "d01_teaching")
    assert "Start session" in main_text(page)
    no_traceback(page)
