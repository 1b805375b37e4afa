"""The player's views in Debian Chromium: the live panel beside the marked pair, titles off the
image, wheel zoom in small steps, zoom to the calipers, and a still without transport.

One Streamlit server for the module (the generated 120-frame loop whose frames carry their index
in a pixel patch, ``tests/browser.py: loop_frames``, and a one-frame PNG); each test has its own
page.  Waits are on state, never on time.
"""

from __future__ import annotations

import numpy as np
import pytest

from browser import chromium, choose, open_player, rerun, settle, streamlit_server, write_loop_dicom
from conftest import require_binary

pytestmark = pytest.mark.browser

P = "window.__msusPlayer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import cv2

    require_binary("chromium")
    samples = tmp_path_factory.mktemp("samples")
    write_loop_dicom(samples / "a_loop.dcm", n=120, fps=30, mm_per_px=0.1)
    still = np.full((300, 400), 90, np.uint8)
    still[100:140, 20:60] = 200
    cv2.imwrite(str(samples / "b_still.png"), still)
    with streamlit_server(samples) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    pg = open_player(browser, server, 1600, 1000)
    yield pg
    pg.close()


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
    choose(page, "msus_sample", "b_still.png")
    page.wait_for_function(f"{P}.n === 1 && {P}.loaded === 1 && {P}.drawn[0] === 0")
    for sel in (".mp-hud-tl", ".mp-timeline", ".mp-play", ".mp-mark-rest", ".mp-mark-con"):
        assert not page.locator(sel).is_visible(), sel
    assert not page.get_by_role("button", name="A–B ✕").is_visible()
    assert page.get_by_role("button", name="Caliper", exact=True).is_visible()  # still measurable
    assert "Frame 1 / 1" not in page.locator(".msus-player").inner_text()
    page.keyboard.press("r")  # no rest on a still
    settle(page)
    assert page.evaluate(f"{P}.data.marks") == {"rest": None, "contraction": None}
