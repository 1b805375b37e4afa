"""The teaching page in Debian Chromium (Playwright) against ``streamlit run``.

One learner walks three sample cases: calipers placed with two clicks on the browser player at the
ground-truth stump ends, viewing aids used (A–B, 0.1×, ping-pong), the reveal, the session score and
the results CSV.  Screenshots go to ``artifacts/teaching/`` (gitignored).  Every wait is on state
(``tests/browser.py``: a script run that ended after the action, the player's own state), never on
time.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from browser import CHROMIUM_ARGS, RUN_WATCH, rerun, settle
from conftest import ROOT, require, require_binary
from teaching_helpers import THREE, three_samples
from teaching_helpers import truth as sample_truth

pytestmark = pytest.mark.browser

SCRIPT = ROOT / "tests" / "teaching_app_script.py"
SHOTS = ROOT / "artifacts" / "teaching"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    return three_samples(tmp_path_factory)


@pytest.fixture(scope="module")
def server(samples, tmp_path_factory):
    from browser import streamlit_server

    require_binary("chromium")  # before paying for a server start
    data = tmp_path_factory.mktemp("teach_data")
    try:
        with streamlit_server(samples, data, timeout_s=40, script=SCRIPT) as url:
            yield url
    except RuntimeError as exc:  # the server did not start: its log, as one failure
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def page(server):
    chromium = require_binary("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        require(False, "the Python package playwright")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
        pg.add_init_script(RUN_WATCH)  # counts finished script runs (browser.rerun)
        pg.set_default_timeout(30_000)
        yield pg
        browser.close()




def player_ready(pg, n_frames: int) -> None:
    pg.wait_for_function(
        f"() => window.__msusPlayer && window.__msusPlayer.n === {n_frames} && window.__msusPlayer.loaded >= 1",
        timeout=30_000,
    )


def shot(pg, name: str, top: bool = True) -> None:
    settle(pg)
    if top:
        pg.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]'); if (m) m.scrollTo(0, 0); window.scrollTo(0, 0); }")
    pg.screenshot(path=str(SHOTS / name), full_page=True)


def click_caliper(pg, p1, p2, nudge_px: float = 0.0) -> None:
    """Two clicks at ``p1`` and ``p2`` (image px); ``nudge_px`` moves the second end right/down."""
    p2 = (p2[0] + nudge_px, p2[1] + nudge_px)
    settle(pg)
    with rerun(pg):  # the second click sends the caliper: a run measures it
        for p in (p1, p2):
            x, y = pg.evaluate("(p) => window.__msusPlayer.toScreen(p)", list(p))
            pg.mouse.click(x, y)


def call(pg, label: str) -> None:
    settle(pg)
    if pg.locator('[data-testid="stRadio"]').get_by_role("radio", name=label, exact=True).is_checked():
        return  # already the call: a click would start no run
    with rerun(pg):
        pg.locator('[data-testid="stRadio"]').get_by_text(label, exact=True).click()


def typed_gap(pg, gap_mm: float) -> None:
    with rerun(pg):
        pg.get_by_text(re.compile("I see a gap")).click()
    box = pg.get_by_label("Gap (mm)")
    with rerun(pg):
        box.fill(f"{gap_mm:.1f}")
        box.press("Enter")


def click_button(pg, name: str) -> None:
    settle(pg)
    with rerun(pg):
        pg.get_by_role("button", name=name).click()


def metric(pg, label: str) -> str:
    m = pg.locator('[data-testid="stMetric"]', has_text=label).first
    return m.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_learner_walks_three_cases_in_the_browser(page, server, samples):
    pg = page
    truth = {n: sample_truth(samples, n) for n in THREE}
    pg.goto(server)
    pg.get_by_role("button", name="Start session").wait_for()
    settle(pg)
    with rerun(pg):
        pg.get_by_label("Learner (or the room)").fill("Learner B")
        pg.get_by_label("Learner (or the room)").press("Enter")
    click_button(pg, "Start session")

    # ---- case 1: full-thickness tear, calipers on the player -----------------------------------
    t = truth["phantom_full_tear"]
    rest, con = t["rest_frame"], t["contraction_frame"]
    pg.get_by_text("Case 1 of 3").wait_for()
    player_ready(pg, 1)  # the static step shows one frame only
    # a still: no "Frame 1 / 1", no transport, no Rest / Contraction / A–B buttons
    pg.wait_for_function("() => window.__msusPlayer.drawn[0] === 0")
    for sel in (".mp-hud-tl", ".mp-timeline", ".mp-play", ".mp-mark-rest", ".mp-mark-con", 'button[title^="Set A"]'):
        assert not pg.locator(sel).is_visible(), sel
    assert "Frame 1 / 1" not in pg.locator(".msus-player").inner_text()
    call(pg, "Partial tear")
    click_caliper(pg, *t["stump_ends_px"][rest], nudge_px=3)  # a little off, as a learner would
    pg.get_by_text(re.compile(r"Your caliper on this frame")).wait_for()
    shot(pg, "01_static.png")
    got = float(re.search(r"([\d.]+) mm", pg.get_by_text(re.compile("Your caliper on this frame")).inner_text()).group(1))
    assert abs(got - t["gap_rest_mm"]) < 1.0
    click_button(pg, "Commit and play the loop")

    pg.get_by_text(re.compile("Your static call")).wait_for()
    player_ready(pg, t["n_frames"])
    # "Commit and play the loop" plays it: the loop runs on arrival, from the static frame
    pg.wait_for_function("() => window.__msusPlayer.playing && window.__msusPlayer.stats.displayed > 3")
    pg.evaluate("() => window.__msusPlayer.pause()")
    # viewing aids: A–B on the contraction, 0.1×, ping-pong
    pg.evaluate(f"() => window.__msusPlayer.seek({rest})")
    pg.locator('button[title^="Set A"]').click()
    pg.evaluate(f"() => window.__msusPlayer.seek({con})")
    pg.locator('button[title^="Set B"]').click()
    pg.evaluate("() => { window.__msusPlayer.setSpeed(0.1); window.__msusPlayer.setMode('pingpong'); window.__msusPlayer.play(); }")
    pg.wait_for_function("() => window.__msusPlayer.playing && window.__msusPlayer.stats.displayed > 1")
    assert pg.evaluate("() => window.__msusPlayer.speed") == 0.1
    pg.get_by_text(re.compile("Prepared clip for the room")).click()
    pg.get_by_text(re.compile(r"A–B frames \d+–\d+ at")).wait_for()  # the room's clip is shown
    shot(pg, "02_loop.png")
    pg.evaluate(f"() => {{ window.__msusPlayer.pause(); window.__msusPlayer.seek({con}); }}")
    pg.wait_for_function(f"() => window.__msusPlayer.drawn[0] === {con}")
    click_caliper(pg, *t["stump_ends_px"][con], nudge_px=-3)
    pg.get_by_text(re.compile(r"Your caliper on the contraction frame")).wait_for()
    # side by side: the static (rest) frame beside the contraction frame the learner marks, difference view
    with rerun(pg):
        pg.locator('button[title^="Mark this frame as the contraction"]').click()
    with rerun(pg):
        pg.get_by_text("Rest | Contraction", exact=True).click()
    with rerun(pg):
        pg.get_by_text("Difference", exact=True).click()
    pg.wait_for_function("() => window.__msusPlayer.panelFrames().length >= 3")
    panels = pg.evaluate("() => window.__msusPlayer.panelFrames()")
    assert [p["frame"] for p in panels[:2]] == [rest, con] and panels[2]["kind"] == "difference"
    pg.wait_for_function(f"() => JSON.stringify(window.__msusPlayer.drawn) === '[{rest},{con},null]'")
    shot(pg, "02b_loop_pair_difference.png")
    call(pg, "Suspected full-thickness tear")
    click_button(pg, "Reveal the expert finding")

    pg.get_by_text(re.compile("Expert finding")).wait_for()
    with rerun(pg):
        pg.get_by_text(re.compile("Difference view")).click()
    pg.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"]').length >= 3")
    shot(pg, "03_reveal.png")
    # partial on the static frame (wrong), right after the loop (+10), both calipers within 1 mm
    assert metric(pg, "Case score") == "90 / 100"
    # hand-out: the annotated GIF of the A–B range
    pg.get_by_text("Hand-outs for this case").click()
    with pg.expect_download() as dl:
        pg.get_by_role("button", name=re.compile("Annotated GIF")).click()
    assert Path(dl.value.path()).read_bytes()[:6] == b"GIF89a"
    click_button(pg, "Next case")

    # ---- case 2: partial tear, typed gaps -----------------------------------------------------
    t = truth["phantom_partial_tear"]
    pg.get_by_text("Case 2 of 3").wait_for()
    call(pg, "Partial tear")
    typed_gap(pg, t["gap_rest_mm"])
    click_button(pg, "Commit and play the loop")
    pg.get_by_text(re.compile("Your static call")).wait_for()
    typed_gap(pg, t["gap_contraction_mm"] + 0.3)
    click_button(pg, "Reveal the expert finding")
    pg.get_by_text(re.compile("Expert finding")).wait_for()
    assert metric(pg, "Case score") == "100 / 100"
    click_button(pg, "Next case")

    # ---- case 3: intact muscle, a false call after the loop ------------------------------------
    pg.get_by_text("Case 3 of 3").wait_for()
    call(pg, "No defect")
    click_button(pg, "Commit and play the loop")
    pg.get_by_text(re.compile("Your static call")).wait_for()
    call(pg, "Partial tear")
    click_button(pg, "Reveal the expert finding")
    pg.get_by_text(re.compile("Expert finding")).wait_for()
    assert metric(pg, "Case score") == "50 / 100"  # static right (20) + no gap measured (15 + 15)
    click_button(pg, "Finish the session")

    # ---- summary and CSV -------------------------------------------------------------------------
    pg.get_by_text(re.compile("Session summary")).wait_for()
    assert metric(pg, "Score") == "240 / 300"
    assert metric(pg, "Final calls right") == "2 / 3"
    shot(pg, "04_summary.png")
    with pg.expect_download() as dl:
        pg.get_by_role("button", name="Download session results (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [r["case_id"] for r in rows] == [f"sample-{n}" for n in THREE] + ["TOTAL"]
    assert rows[-1]["points"] == "240.00" and rows[0]["learner"] == "Learner B"

    with rerun(pg):
        pg.get_by_text("Presentation layout (large font)").click()
    pg.wait_for_function(
        "() => { const v = [...document.querySelectorAll('[data-testid=\"stMetricValue\"] *')].filter((e) => e.children.length === 0)[0];"
        " return v && parseFloat(getComputedStyle(v).fontSize) >= 48 && document.querySelector('[data-testid=\"stTable\"]'); }"
    )
    shot(pg, "05_presentation.png")
    size = pg.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stMarkdownContainer\"] p')).fontSize)"
    )
    assert size >= 24
