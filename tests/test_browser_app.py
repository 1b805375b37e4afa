"""The app in a real browser: Debian Chromium (Playwright) against `streamlit run app.py`.

One Streamlit server for the module.  Samples: a generated 120-frame 600×800 loop whose frames
carry their index in a pixel patch (``tests/browser.py: loop_frames``), a real scanner
file with a known region calibration and a one-frame PNG (a still).  Also the player's views:
the live panel beside the marked pair, titles off the image, wheel zoom in small steps, zoom to
the calipers, and a still without transport.  Each test has its own page (a fresh Streamlit session), so
one failure never cascades; waits are on state (``tests/browser.py``), never on time.
Screenshots go to ``artifacts/`` for a human to look at.  Timing is not asserted here (see
``benchmarks/bench_player.py``); playback is checked to advance frame by frame.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pydicom
import pytest

from browser import chromium, choose, open_player, rerun, settle, streamlit_server, write_loop_dicom
from conftest import DATA, ROOT, require_binary

pytestmark = pytest.mark.browser

CX50 = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"
ART = ROOT / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import cv2

    require_binary("chromium")
    samples = tmp_path_factory.mktemp("samples")
    write_loop_dicom(samples / "a_loop.dcm", n=120, fps=30, mm_per_px=0.1)
    shutil.copy(CX50, samples / "b_cx50.dcm")
    still = np.full((300, 400), 90, np.uint8)
    still[100:140, 20:60] = 200
    cv2.imwrite(str(samples / "c_still.png"), still)
    with streamlit_server(samples) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    pg = open_player(browser, server, 1440, 1000)
    ART.mkdir(exist_ok=True)
    yield pg
    pg.close()


def frame(page) -> int:
    return page.evaluate("window.__msusPlayer.frame")


def focus_player(page):
    page.locator(".mp-counter").click()


def wait_python(page):
    """Until every event the player sent is acknowledged by a rerun (and that run is over)."""
    settle(page)


def play_until(page, speed: float, displayed: int) -> dict:
    """Play from frame 1 at ``speed`` until ``displayed`` frames were shown; the player's stats."""
    page.evaluate("(s) => { const p = window.__msusPlayer; p.pause(); p.seek(0); p.setMode('loop');"
                  " p.setSpeed(s); p.play(); }", speed)
    page.wait_for_function(f"window.__msusPlayer.stats.displayed >= {displayed}", timeout=30_000)
    return page.evaluate("() => { const p = window.__msusPlayer; const s = p.stats; p.pause(); return s; }")


def frames_seen(page, until: list[int], max_ticks: int = 900) -> set[int]:
    """Frames on screen, sampled every animation frame, until each of ``until`` was seen."""
    return set(page.evaluate("""([want, limit]) => new Promise((done) => {
      const seen = new Set(); let k = 0;
      const tick = () => {
        seen.add(window.__msusPlayer.frame);
        if (want.every((f) => seen.has(f)) || ++k > limit) done([...seen]); else requestAnimationFrame(tick);
      };
      tick();
    })""", [until, max_ticks]))


def wait_drawn(page, frames: list[int]):
    """Until the canvas panels show exactly these frames (decoding runs off the main thread)."""
    page.wait_for_function(
        "(f) => JSON.stringify(window.__msusPlayer.drawn.slice(0, f.length)) === JSON.stringify(f)", arg=frames,
        timeout=10_000,
    )


def patch_level(page, panel=0) -> int:
    return page.evaluate("(k) => window.__msusPlayer.pixel(k, [40, 120])[0]", panel)


def test_opens_first_sample_like_a_viewer(page):
    assert page.evaluate("window.__msusPlayer.n") == 120
    hud = page.locator(".mp-hud-tl").inner_text()
    assert hud.startswith("Frame 1 / 120") and "0.0 ms" in hud
    badge = page.locator(".mp-hud-br").inner_text()
    assert "0.1000" in badge and "us_region" in badge
    wait_drawn(page, [0])
    assert abs(patch_level(page) - 0) <= 6  # frame 1 shown
    page.screenshot(path=str(ART / "app_single.png"))


def test_keyboard_steps_exactly(page):
    focus_player(page)
    page.evaluate("window.__msusPlayer.seek(0)")
    steps = [("ArrowRight", 1), ("ArrowRight", 2), ("Shift+ArrowRight", 12), ("ArrowLeft", 11), ("ArrowDown", 12),
             ("ArrowUp", 11), ("Shift+ArrowLeft", 1), ("End", 119), ("ArrowRight", 119), ("Home", 0)]
    for key, want in steps:
        page.keyboard.press(key)
        assert frame(page) == want, key
    page.keyboard.press("Shift+ArrowRight")
    wait_drawn(page, [10])
    assert abs(patch_level(page) - 20) <= 6  # the pixels of frame 11 are on screen
    hud = page.locator(".mp-hud-tl").inner_text()
    assert hud.startswith("Frame 11 / 120") and f"{10 * 1000 / 30:.1f} ms" in hud
    # Space plays and pauses; keys never reach Streamlit (no rerun shortcut): still one app
    page.keyboard.press("Space")
    page.wait_for_function("window.__msusPlayer.frame > 11")
    page.keyboard.press("Space")
    assert frame(page) > 11 and not page.evaluate("window.__msusPlayer.playing")


def test_playback_shows_frames_in_order(page):
    s = play_until(page, 1.0, 30)
    assert s["displayed"] >= 30 and s["target_fps"] == pytest.approx(30, rel=1e-3)
    (ART / "browser_playback.json").write_text(json.dumps(s, indent=1))
    s2 = play_until(page, 0.5, 8)
    assert s2["target_fps"] == pytest.approx(15, rel=1e-3)
    # A–B sub-range, ping-pong: playback stays inside frames 10..20 and turns at both ends
    focus_player(page)
    page.evaluate("window.__msusPlayer.seek(10)")
    page.keyboard.press("a")
    page.evaluate("window.__msusPlayer.seek(20)")
    page.keyboard.press("b")
    page.evaluate("window.__msusPlayer.setMode('pingpong'); window.__msusPlayer.setSpeed(2); window.__msusPlayer.play()")
    seen = frames_seen(page, [10, 20, 11])  # both ends and back: it turned
    page.evaluate("window.__msusPlayer.pause(); window.__msusPlayer.setMode('loop'); window.__msusPlayer.setSpeed(1)")
    assert seen <= set(range(10, 21)) and len(seen) > 5
    page.keyboard.press("Home")
    assert frame(page) == 10  # Home/End go to the ends of the A–B range
    page.locator(".mp-btn", has_text="A–B ✕").click()


def test_side_by_side_shows_the_marked_frames(page):
    focus_player(page)
    page.evaluate("window.__msusPlayer.seek(5)")
    page.keyboard.press("r")
    page.evaluate("window.__msusPlayer.seek(60)")
    page.keyboard.press("c")
    wait_python(page)
    # 'c' is also Streamlit's clear-cache shortcut: it must not have reached the page
    assert page.locator("[role=dialog]").count() == 0
    page.get_by_role("radio", name="Rest | Contraction").click()
    page.wait_for_function("window.__msusPlayer.data.view === 'pair'", timeout=20_000)
    panels = page.evaluate("window.__msusPlayer.panelFrames()")
    assert [p["frame"] for p in panels] == [5, 60]
    wait_drawn(page, [5, 60])
    assert abs(patch_level(page, 0) - 10) <= 6 and abs(patch_level(page, 1) - 120) <= 6
    page.screenshot(path=str(ART / "app_side_by_side.png"))
    page.get_by_role("radio", name="Difference").click()
    page.wait_for_function("window.__msusPlayer.data.pair_mode === 'difference'", timeout=20_000)
    wait_drawn(page, [5, 60, None])
    assert abs(patch_level(page, 2) - 110) <= 10  # |120 − 10|
    page.screenshot(path=str(ART / "app_difference.png"))
    page.get_by_role("radio", name="Single").click()
    page.wait_for_function("window.__msusPlayer.data.view === 'single'", timeout=20_000)


def _select_sample(page, name):
    choose(page, "msus_sample", name)
    page.wait_for_function(
        "window.__msusPlayer && window.__msusPlayer.n === 2 && window.__msusPlayer.loaded === 2", timeout=30_000
    )
    wait_drawn(page, [0])
    settle(page)


def test_two_clicks_make_the_right_mm_and_ends_drag(page):
    _select_sample(page, "b_cx50.dcm")
    ds = pydicom.dcmread(CX50, stop_before_pixels=True)
    reg = next(r for r in ds.SequenceOfUltrasoundRegions if int(r.RegionSpatialFormat) == 1)
    mx, my = abs(float(reg.PhysicalDeltaX)) * 10, abs(float(reg.PhysicalDeltaY)) * 10
    # the scanner's own caliper crosses on this frame ("Cist Mag 1.06 cm")
    a, b = (459.5, 290.5), (498.5, 301.5)
    for pt in (a, b):
        x, y = page.evaluate("(pt) => window.__msusPlayer.toScreen(pt)", list(pt))
        page.mouse.click(x, y)
    wait_python(page)
    page.wait_for_function("window.__msusPlayer.data.calipers.length === 1", timeout=20_000)
    cal = page.evaluate("window.__msusPlayer.data.calipers[0]")
    (x1, y1), (x2, y2) = cal["p1"], cal["p2"]
    assert math.dist((x1, y1), a) < 1.0 and math.dist((x2, y2), b) < 1.0  # where the clicks landed
    expected = math.hypot((x2 - x1) * mx, (y2 - y1) * my)
    assert cal["text"] == f"{expected:.2f} mm"
    assert abs(expected - 10.6) < 0.15
    page.screenshot(path=str(ART / "app_caliper.png"))
    # drag the second end 20 px to the right
    sx, sy = page.evaluate("(pt) => window.__msusPlayer.toScreen(pt)", [x2, y2])
    tx, ty = page.evaluate("(pt) => window.__msusPlayer.toScreen(pt)", [x2 + 20, y2])
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, sy, steps=3)
    page.mouse.move(tx, ty, steps=3)
    page.mouse.up()
    wait_python(page)
    page.wait_for_function(f"window.__msusPlayer.data.calipers[0].p2[0] > {x2 + 15}", timeout=20_000)
    cal2 = page.evaluate("window.__msusPlayer.data.calipers[0]")
    assert cal2["id"] == cal["id"]
    (u1, v1), (u2, v2) = cal2["p1"], cal2["p2"]
    assert cal2["text"] == f"{math.hypot((u2 - u1) * mx, (v2 - v1) * my):.2f} mm"
    body = page.locator("body").inner_text()
    assert "Traceback" not in body


def test_keys_work_page_wide_and_question_mark_shows_the_shortcuts(page):
    # focus outside the player (the page body): Space plays without scrolling the page, ← steps
    page.locator("[data-testid=stMain] h5").first.click()
    y0 = page.evaluate("document.querySelector('[data-testid=stMain]').scrollTop + window.scrollY")
    page.keyboard.press("Space")
    page.wait_for_function("window.__msusPlayer.playing")
    page.keyboard.press("Space")
    assert not page.evaluate("window.__msusPlayer.playing")
    assert page.evaluate("document.querySelector('[data-testid=stMain]').scrollTop + window.scrollY") == y0
    at = frame(page)
    page.keyboard.press("ArrowRight")
    assert frame(page) == at + 1
    # … but typing in a text field never moves the player
    box = page.locator("section[data-testid=stSidebar]").get_by_role("textbox", name="…or your name")
    box.click()
    page.keyboard.type("rc ")
    assert box.input_value() == "rc " and frame(page) == at + 1
    assert page.evaluate("window.__msusPlayer.data.marks") == {"rest": None, "contraction": None}
    assert not page.evaluate("window.__msusPlayer.playing")
    box.fill("")
    page.locator("[data-testid=stMain] h5").first.click()
    # "?" opens the shortcuts overlay (and the bar shows the hint), Esc closes it
    assert "? keys" in page.locator(".mp-hint").inner_text()
    page.keyboard.press("?")
    page.wait_for_function("window.__msusPlayer.helpShown")
    assert "mark rest / contraction" in page.locator(".mp-help").inner_text()
    page.evaluate("document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
    page.screenshot(path=str(ART / "app_shortcuts.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("!window.__msusPlayer.helpShown")
    settle(page)
    sidebar = page.locator("section[data-testid=stSidebar]")
    assert sidebar.count() == 1


# ---- the player's views ------------------------------------------------------------------------
P = "window.__msusPlayer"


def mark_pair(pg, rest: int, con: int, mode: str | None = None) -> None:
    """Mark rest and contraction by keys, then show them side by side (and ``mode``)."""
    pg.locator(".mp-counter").click()
    for frame, key in ((rest, "r"), (con, "c")):
        pg.evaluate(f"{P}.seek({frame})")
        with rerun(pg):
            pg.keyboard.press(key)
    with rerun(pg):
        pg.get_by_role("radio", name="Rest | Contraction").click()
    pg.wait_for_function(f"{P}.data.view === 'pair'")
    if mode:
        with rerun(pg):
            pg.get_by_role("radio", name=mode).click()
        pg.wait_for_function(f"{P}.data.pair_mode !== 'side'")


def level(pg, panel: int) -> int:
    return pg.evaluate(f"(k) => {P}.pixel(k, [40, 120])[0]", panel)


def test_play_side_by_side_shows_the_loop_live_beside_the_marked_pair(page):
    mark_pair(page, 5, 60)
    page.wait_for_function(f"JSON.stringify({P}.drawn) === '[5,60]'")
    page.evaluate(f"{P}.setSpeed(1); {P}.seek(10); {P}.play()")
    page.wait_for_function(f"{P}.panelFrames().length === 3 && {P}.panelFrames()[2].kind === 'live'")
    # the live panel follows the playhead; the pair stays on the marked frames
    page.wait_for_function(f"{P}.drawn[2] !== null && {P}.drawn[2] > 14")
    first = page.evaluate(f"{P}.drawn.slice()")
    page.wait_for_function(f"(f) => {P}.drawn[2] !== f", arg=first[2])
    assert first[:2] == [5, 60]
    shown = page.evaluate(f"() => {{ const d = {P}.drawn.slice(); {P}.pause(); return [...d, {P}.frame]; }}")
    # paused: the marked pair as it was, the playhead where it stopped
    page.wait_for_function(f"{P}.panelFrames().length === 2")
    page.wait_for_function(f"JSON.stringify({P}.drawn) === '[5,60]'")
    assert abs(level(page, 0) - 10) <= 6 and abs(level(page, 1) - 120) <= 6
    assert shown[3] == shown[2]  # the live panel showed the playhead's frame
    assert page.evaluate(f"{P}.frame") == shown[2]
    settle(page)


def test_live_panel_pixels_are_the_playing_frame_and_difference_titles_sit_above_the_image(page):
    mark_pair(page, 5, 60, mode="Difference")
    page.wait_for_function(f"JSON.stringify({P}.drawn) === '[5,60,null]'")
    for p in page.evaluate(f"{P}.panelFrames()"):  # no title bar covers the image top (the superficial fascia)
        assert p["title_bottom"] <= p["image_top"], p
    page.evaluate(f"{P}.setSpeed(0.1); {P}.seek(30); {P}.play()")
    page.wait_for_function(f"{P}.panelFrames().length === 4 && {P}.drawn[3] !== null")
    # the live panel shows the frame on the playhead, pixel for pixel (the patch codes the index)
    got = page.evaluate(f"() => {{ const f = {P}.drawn[3]; return [f, {P}.pixel(3, [40, 120])[0]]; }}")
    assert abs(got[1] - (2 * got[0]) % 256) <= 6
    for p in page.evaluate(f"{P}.panelFrames()"):
        assert p["title_bottom"] <= p["image_top"], p
    assert [p["kind"] for p in page.evaluate(f"{P}.panelFrames()")] == ["image", "image", "difference", "live"]
    page.evaluate(f"{P}.pause()")
    page.wait_for_function(f"{P}.panelFrames().length === 3")
    settle(page)


def test_wheel_zooms_in_small_steps(page):
    box = page.locator(".mp-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    zooms = []
    for _ in range(4):  # four notches of an ordinary mouse wheel
        page.mouse.wheel(0, -100)
        page.wait_for_function(f"(n) => {P}.zoom > n", arg=(zooms or [1.0])[-1])
        zooms.append(page.evaluate(f"{P}.zoom"))
    assert zooms[-1] == pytest.approx(1.1 ** 4, rel=0.02)  # 146 %, not 682 %
    page.mouse.wheel(0, 600)  # one coarse, fast event is still a single step
    page.wait_for_function(f"(z) => {P}.zoom < z", arg=zooms[-1])
    assert page.evaluate(f"{P}.zoom") == pytest.approx(1.1 ** 3, rel=0.02)
    page.keyboard.press("f")
    assert page.evaluate(f"{P}.zoom") == 1


def test_zoom_to_calipers_fits_the_view_to_them(page):
    page.evaluate(f"{P}.seek(20)")
    settle(page)
    a, b = (380.0, 280.0), (440.0, 320.0)  # a 60×40 px caliper near the middle
    with rerun(page):
        for pt in (a, b):
            x, y = page.evaluate(f"(pt) => {P}.toScreen(pt)", list(pt))
            page.mouse.click(x, y)
    page.wait_for_function(f"{P}.data.calipers.length === 1")
    page.get_by_role("button", name="⤢ Calipers").click()
    z = page.evaluate(f"{P}.zoom")
    assert z > 3
    canvas = page.locator(".mp-canvas").bounding_box()
    ends = [page.evaluate(f"(pt) => {P}.toScreen(pt)", list(pt)) for pt in (a, b)]
    (x1, y1), (x2, y2) = ends
    inside = lambda x, y: canvas["x"] < x < canvas["x"] + canvas["width"] and canvas["y"] < y < canvas["y"] + canvas["height"]  # noqa: E731
    assert inside(x1, y1) and inside(x2, y2)
    assert (x2 - x1) > 0.3 * canvas["width"] or (y2 - y1) > 0.3 * (canvas["height"] - 68)  # it fills the view
    mid = ((x1 + x2) / 2 - canvas["x"], (y1 + y2) / 2 - canvas["y"])
    assert abs(mid[0] - canvas["width"] / 2) < 3  # centred on the calipers
    # Z on a frame without calipers says so and leaves the view
    page.keyboard.press("f")
    page.evaluate(f"{P}.seek(90)")
    page.keyboard.press("z")
    assert page.evaluate(f"{P}.zoom") == 1
    assert "no caliper on this frame" in page.locator(".mp-hint").inner_text()
    settle(page)


def test_a_still_has_no_transport_nor_frame_line(page):
    choose(page, "msus_sample", "c_still.png")
    page.wait_for_function(f"{P}.n === 1 && {P}.loaded === 1 && {P}.drawn[0] === 0")
    for sel in (".mp-hud-tl", ".mp-timeline", ".mp-play", ".mp-mark-rest", ".mp-mark-con"):
        assert not page.locator(sel).is_visible(), sel
    assert not page.get_by_role("button", name="A–B ✕").is_visible()
    assert page.get_by_role("button", name="Caliper", exact=True).is_visible()  # still measurable
    assert "Frame 1 / 1" not in page.locator(".msus-player").inner_text()
    assert page.locator(".mp-hud-bl").inner_text().startswith("still · zoom 100%")
    page.keyboard.press("r")  # no rest on a still
    settle(page)
    assert page.evaluate(f"{P}.data.marks") == {"rest": None, "contraction": None}
