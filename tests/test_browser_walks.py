"""The three users of DESIGN.md ("Three users, three walks") in Debian Chromium against `streamlit run app.py`.

One Streamlit server for the module (fresh findings store, a samples folder with the full-tear
phantom).  Tests run in file order and share pages: the sonographer's walk leaves the saved
finding the physician then reviews.  Assertions are on what the user sees (frame counter, gaps in
mm, the flag's reasons, the caliper after a reload, the one-line error of a bad upload).
Screenshots go to ``artifacts/walks/`` (gitignored) for a human to look at.
"""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from conftest import DATA, ROOT, SAMPLES, require_binary

pytestmark = pytest.mark.browser

ART = ROOT / "artifacts" / "walks"
VIDEO = DATA / "p6_isokinetic120_01_push_02.mp4"
CX50 = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"  # scanner caliper 10.6 mm (tests/data/NOTICE.md)
PLAYER_READY = ("window.__msusPlayer && window.__msusPlayer.n > 0"
                " && window.__msusPlayer.loaded === window.__msusPlayer.n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_binary("chromium")
    from benchmarks.bench_player import streamlit_server

    samples = tmp_path_factory.mktemp("walk_samples")
    for name in ("phantom_full_tear.dcm", "phantom_full_tear.truth.json"):
        shutil.copy(SAMPLES / name, samples / name)
    data = tmp_path_factory.mktemp("walk_data")
    with streamlit_server(samples, data) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    from benchmarks.bench_player import CHROMIUM_ARGS

    ART.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser, url):
    pg = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg.set_default_timeout(30_000)
    pg.goto(url)
    pg.wait_for_function(PLAYER_READY, timeout=60_000)
    return pg


@pytest.fixture(scope="module")
def sono(browser, server):
    pg = new_page(browser, server)
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def doctor(browser, server):
    pg = new_page(browser, server)
    yield pg
    pg.close()


# ---- helpers: wait for what the user waits for ---------------------------------------------------
def idle(pg, started: bool = False):
    """Until the player's events are acknowledged and the script run they caused is over.

    After a click, first wait (up to 2 s) for the run it causes to start, unless ``started``.
    """
    if not started:
        try:
            pg.wait_for_selector("[data-test-script-state=running]", timeout=2_000)
        except PlaywrightTimeout:
            pass  # a run so short it was never seen, or none: both are done
    pg.wait_for_function("!window.__msusPlayer || window.__msusPlayer.pendingEvents === 0")
    pg.wait_for_selector("[data-test-script-state=notRunning]")


def shot(pg, name):
    pg.screenshot(path=str(ART / f"{name}.png"))


def frame(pg) -> int:
    return pg.evaluate("window.__msusPlayer.frame")


def counter(pg) -> str:
    return pg.locator(".mp-counter").inner_text()


def main_text(pg) -> str:
    return pg.locator("[data-testid=stMain]").inner_text()


def alerts(pg) -> list[str]:
    return [a.inner_text() for a in pg.locator("[data-testid=stAlert]").all()]


def no_traceback(pg):
    assert pg.locator("[data-testid=stException]").count() == 0
    assert "Traceback" not in main_text(pg)


def choose(pg, key, option):
    """Pick ``option`` in a selectbox; a rerun landing mid-click can close the list, so retry."""
    for attempt in range(4):
        idle(pg)
        box = pg.locator(f".st-key-{key} input")
        box.scroll_into_view_if_needed()
        box.click()
        if pg.get_by_role("listbox").count() == 0:
            box.press("ArrowDown")
        opt = pg.get_by_role("listbox").get_by_role("option", name=option).first
        try:
            opt.click(timeout=5_000)
            break
        except Exception:
            if attempt == 3:
                raise
            pg.keyboard.press("Escape")
    idle(pg)


def set_reviewer(pg, name):
    side = pg.locator("section[data-testid=stSidebar]")
    box = side.get_by_role("textbox", name="…or your name")
    box.fill(name)
    box.press("Enter")
    expect(side).to_contain_text(f"Reviewer: {name}")
    idle(pg, started=True)


def screen(pg, pt, panel=0):
    return pg.evaluate("(a) => window.__msusPlayer.toScreen(a[0], a[1])", [pt, panel])


def calipers(pg) -> list[dict]:
    return pg.evaluate("window.__msusPlayer.data.calipers")


def export(pg, option, path):
    if not pg.locator(".st-key-msus_export_format").is_visible():
        pg.get_by_text("Export", exact=True).first.click()
        idle(pg)
    choose(pg, "msus_export_format", option)
    pg.locator(".st-key-msus_export_go button").click()
    idle(pg)
    with pg.expect_download() as dl:
        pg.locator(".st-key-msus_export_dl button").click()
    dl.value.save_as(path)
    return dl.value.suggested_filename


# ---- (a) the sonographer ------------------------------------------------------------------------
def test_sonographer_marks_rest_and_contraction_with_keys(sono):
    shot(sono, "a01_opened")
    assert counter(sono).startswith("1 / 40")
    assert "0.1200" in sono.locator(".mp-hud-br").inner_text()  # calibration badge on the image
    set_reviewer(sono, "Ana Sono")
    expect(sono.locator("section[data-testid=stSidebar]")).to_contain_text("Reviewer: Ana Sono")
    sono.locator(".mp-counter").click()  # focus the player
    sono.keyboard.press("Space")
    sono.wait_for_function("window.__msusPlayer.frame >= 6", timeout=10_000)
    sono.keyboard.press("Space")
    assert not sono.evaluate("window.__msusPlayer.playing")
    while frame(sono) > 4:  # back to the stillest frame (frame 5 of the phantom)
        sono.keyboard.press("ArrowLeft")
    assert counter(sono).startswith("5 / 40") and "Frame 5 / 40" in sono.locator(".mp-hud-tl").inner_text()
    sono.keyboard.press("r")
    for _ in range(16):  # forward to the widest separation (frame 21)
        sono.keyboard.press("ArrowRight")
    assert counter(sono).startswith("21 / 40 · 1250.0 ms")
    sono.keyboard.press("c")
    sono.wait_for_timeout(400)  # the player reports the settled frame 350 ms after the last step
    idle(sono)
    shot(sono, "a02_marked")
    assert re.search(r"Rest: 5\s+Contraction: 21", main_text(sono))


def test_sonographer_analyzes_and_sees_gaps_and_flag(sono):
    sono.locator(".mp-counter").click()
    sono.keyboard.press("ArrowLeft")
    sono.keyboard.press("ArrowRight")  # the player reports the settled frame 350 ms later: a rerun that
    sono.get_by_role("button", name="Analyze").click()  # interrupts the click's run; the click must survive
    expect(sono.locator("[data-testid=stMain]")).to_contain_text("Flag: suspected full thickness", timeout=60_000)
    idle(sono, started=True)
    text = main_text(sono)
    assert "Suspected full-thickness tear" in text
    assert "defect spans" in text and "gap widens" in text  # the flag's reasons
    gaps = re.findall(r"Gap at (rest|contraction) (\d+\.\d) mm", text)
    assert [g[0] for g in gaps] == ["rest", "contraction"]
    rest_mm, con_mm = (float(g[1]) for g in gaps)
    assert 3.5 < rest_mm < 6.5 and 8.5 < con_mm < 11.5  # phantom truth 5 -> 10 mm
    sono.get_by_text("Rest | Contraction", exact=True).click()
    idle(sono)
    assert [p["frame"] for p in sono.evaluate("window.__msusPlayer.panelFrames()")] == [4, 20]
    sono.locator(".mp-canvas").scroll_into_view_if_needed()
    shot(sono, "a03_analyzed_pair")
    no_traceback(sono)


def test_sonographer_drags_labels_and_the_caliper_survives_reload(sono):
    for k, key in enumerate(("gap_rest", "gap_contraction")):  # accept the suggested gaps: calipers to edit
        sono.locator(f".st-key-msus_acc_{key} button").click()
        sono.wait_for_function(f"window.__msusPlayer.data.calipers.length === {k + 1}")
        idle(sono)
    con = next(c for c in calipers(sono) if c["frame"] == 20)
    before = float(con["text"].split()[0])
    sono.locator(".mp-canvas").scroll_into_view_if_needed()
    (x, y), (x2, y2) = screen(sono, con["p1"], 1), screen(sono, [con["p1"][0] - 2.5, con["p1"][1]], 1)  # 0.3 mm
    sono.mouse.move(x, y)
    sono.mouse.down()
    sono.mouse.move((x + x2) / 2, y, steps=3)
    sono.mouse.move(x2, y2, steps=3)
    sono.mouse.up()
    idle(sono)
    moved = next(c for c in calipers(sono) if c["id"] == con["id"])
    after = float(moved["text"].split()[0])
    assert moved["text"].endswith(" mm") and 0.2 < after - before < 0.4
    shot(sono, "a04_dragged")
    sono.get_by_text("Free-text note").click()
    rows = [c["id"] for c in calipers(sono)]
    choose(sono, "msus_free_row", str(rows.index(con["id"]) + 1))
    label = "fibre end to fibre end"
    sono.locator(".st-key-msus_free_text input").fill(label)
    sono.locator(".st-key-msus_free_text input").press("Enter")
    idle(sono)
    sono.locator(".st-key-msus_free_apply button").click()
    idle(sono)
    shot(sono, "a05_labelled")
    sono.reload()
    sono.wait_for_function(PLAYER_READY, timeout=60_000)
    idle(sono)
    back = {c["id"]: c for c in calipers(sono)}
    assert back[con["id"]]["note"] == label and back[con["id"]]["text"] == moved["text"]
    assert back[con["id"]]["role"] == back[con["id"]]["label"] == "gap at contraction"  # a note never changes the role
    assert "restored 2 saved caliper(s) of Ana Sono" in main_text(sono)
    sono.wait_for_function("window.__msusPlayer.frame === 4")  # opens on the first saved caliper's frame
    assert counter(sono).startswith("5 / 40")
    shot(sono, "a06_reloaded")
    no_traceback(sono)


def test_sonographer_sees_the_saved_flag_and_exports_the_sr(sono, tmp_path):
    import pydicom

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
def test_physician_reviews_adds_a_caliper_and_signs(doctor, tmp_path):
    set_reviewer(doctor, "Dr Bo")
    doctor.get_by_text("Study list", exact=True).click()
    idle(doctor)
    table = doctor.locator("[data-testid=stDataFrame]").last
    table.scroll_into_view_if_needed()
    shot(doctor, "b01_study_list")
    text = main_text(doctor)
    assert "by Ana Sono" in text and "suspected full thickness" in text  # the finding and who made it
    doctor.get_by_text("Rest | Contraction", exact=True).click()
    idle(doctor)
    doctor.get_by_text("Difference", exact=True).click()
    idle(doctor)
    panels = doctor.evaluate("window.__msusPlayer.panelFrames()")
    assert [p["frame"] for p in panels[:2]] == [4, 20] and panels[2]["kind"] == "difference"  # the saved pair
    doctor.locator(".mp-canvas").scroll_into_view_if_needed()
    doctor.locator(".mp-counter").click()
    (x1, y1), (x2, y2) = screen(doctor, [158, 140], 1), screen(doctor, [238, 141], 1)
    doctor.mouse.click(x1, y1)
    doctor.mouse.click(x2, y2)
    idle(doctor)
    mine = calipers(doctor)
    assert len(mine) == 1 and mine[0]["frame"] == 20 and mine[0]["label"] == "gap at contraction"
    assert re.fullmatch(r"\d+\.\d\d mm", mine[0]["text"])
    shot(doctor, "b02_difference_second_rater")
    doctor.get_by_role("button", name="Mark final").click()
    idle(doctor)
    doctor.get_by_role("button", name="Sign as final").click()  # the confirmation step
    idle(doctor)
    expect(doctor.locator("[data-testid=stMain]")).to_contain_text(
        re.compile(r"suspected full thickness — final \(signed by Dr Bo, [\d-]+ [\d:]+ UTC\), automatic-edited, by Ana Sono"))
    name = export(doctor, "One-page PDF", tmp_path / "report.pdf")
    assert name.endswith(".pdf") and (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
    shot(doctor, "b03_final_pdf")
    no_traceback(doctor)


# ---- (c) uploads --------------------------------------------------------------------------------
def test_upload_measures_the_scanner_caliper_and_refuses_a_bad_file(browser, server, tmp_path):
    pg = new_page(browser, server)
    try:
        side = pg.locator("section[data-testid=stSidebar]")
        side.get_by_text("Upload", exact=True).click()
        idle(pg)
        side.locator("input[type=file]").set_input_files(str(CX50))
        pg.wait_for_function("window.__msusPlayer.n === 2 && window.__msusPlayer.loaded === 2", timeout=60_000)
        idle(pg)
        assert "0.2623" in pg.locator(".mp-hud-br").inner_text()
        pg.locator(".mp-counter").click()
        (x1, y1), (x2, y2) = screen(pg, [459.5, 290.5]), screen(pg, [498.5, 301.5])  # the burned-in crosses
        pg.mouse.click(x1, y1)
        pg.mouse.click(x2, y2)
        idle(pg)
        (c,) = calipers(pg)
        assert abs(float(c["text"].split()[0]) - 10.6) <= 0.106 and c["text"].endswith(" mm")
        shot(pg, "c01_uploaded_measured")
        side.locator("input[type=file]").set_input_files(str(VIDEO))  # no calibration in a video: px, marked
        pg.wait_for_function("window.__msusPlayer.data.calibrated === false"
                             " && window.__msusPlayer.loaded === window.__msusPlayer.n", timeout=60_000)
        idle(pg, started=True)
        assert "UNCALIBRATED" in pg.locator(".mp-hud-br").inner_text()
        pg.locator(".mp-counter").click()
        (x1, y1), (x2, y2) = screen(pg, [100, 100]), screen(pg, [200, 150])
        pg.mouse.click(x1, y1)
        pg.mouse.click(x2, y2)
        idle(pg)
        (c,) = calipers(pg)
        assert c["text"] == "111.8 px (uncalibrated)"
        pg.get_by_text("Measurements", exact=True).scroll_into_view_if_needed()
        shot(pg, "c02_uncalibrated_px")
        bad = tmp_path / "scan.dcm"
        bad.write_text("Patient report, not an image.\n" * 80)
        side.locator("input[type=file]").set_input_files(str(bad))
        pg.wait_for_function("!document.querySelector('.mp-counter')", timeout=30_000)
        idle(pg)
        shot(pg, "c03_bad_upload")
        errors = [a for a in alerts(pg) if "scan.dcm" in a]
        assert errors == ["scan.dcm: not a DICOM file, video or image msus can read"], alerts(pg)
        no_traceback(pg)
    finally:
        pg.close()


# ---- (d) teaching -------------------------------------------------------------------------------
def test_mode_switch_opens_teaching(browser, server):
    pg = new_page(browser, server)
    try:
        pg.locator("section[data-testid=stSidebar]").get_by_text("Teaching", exact=True).click()
        pg.get_by_text("Teaching mode").first.wait_for()
        idle(pg)
        shot(pg, "d01_teaching")
        assert "Start session" in main_text(pg)
        no_traceback(pg)
    finally:
        pg.close()
