"""Screenshots of the three walks for a human to look at (not a test).

    .venv/bin/python tests/screenshots.py [OUT_DIR]        # default /tmp/shots

Starts ``streamlit run app.py`` on loopback with a fresh findings store holding what the
sonographer (Ana Sono) saved on the full-tear phantom, drives Debian Chromium at 1600×1000 and
writes, waiting on state (``tests/browser.py``) before each picture:

* ``1_worklist.png`` — the Worklist, filtered by flag, times in the browser's zone (Asia/Tokyo);
* ``2_physician_both_reviewers.png`` — Dr Bo on the Review page: Ana's dashed calipers and the saved
  outline (her toggle on) and his own caliper, side by side with the difference view;
* ``3_live_pair_playing.png`` — Rest | Contraction while the loop plays: the live panel beside the pair;
* ``4_shortcuts.png`` — the "?" shortcuts overlay;
* ``5_teaching_start_blinded.png`` — the Teaching start: neutral case titles until the reveal.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from browser import PLAYER_READY, choose, chromium, new_page, rerun, screen, settle, streamlit_server  # noqa: E402
from test_browser_walks import seed_sonographer, set_reviewer  # noqa: E402

SAMPLES = HERE.parent / "samples"
CASES = ("phantom_full_tear", "phantom_partial_tear", "phantom_intact")
P = "window.__msusPlayer"


def _folders(tmp: Path) -> tuple[Path, Path, str]:
    samples, data = tmp / "samples", tmp / "data"
    samples.mkdir()
    data.mkdir()
    for name in CASES:
        for suffix in (".dcm", ".truth.json"):
            shutil.copy(SAMPLES / f"{name}{suffix}", samples / f"{name}{suffix}")
    return samples, data, f"sqlite:///{data / 'findings.sqlite3'}"


def _top(pg) -> None:
    pg.evaluate("document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")


def _player_in_view(pg, above: int = 150) -> None:
    """Scroll the page so the player, and ``above`` px of what is over it, are under the top bar."""
    pg.locator(".msus-player").evaluate(
        "(e, above) => { const m = document.querySelector('[data-testid=stMain]');"
        " m.scrollBy(0, e.getBoundingClientRect().top - above); }", above)


def shoot(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory(prefix="msus-shots-") as t:
        samples, data, db = _folders(Path(t))
        seed_sonographer(samples, db)
        with streamlit_server(samples, data, env={"MSUS_DATABASE_URL": db}) as url, chromium() as browser:
            pg = new_page(browser, url + "/worklist", 1600, 1000, player=False, timezone_id="Asia/Tokyo")
            set_reviewer(pg, "Dr Bo")
            choose(pg, "msus_wl_flags", "suspected full thickness")
            _top(pg)
            shots.append(out / "1_worklist.png")
            pg.screenshot(path=str(shots[-1]))

            with rerun(pg):
                pg.get_by_role("button", name="Open in Review").click()
            pg.wait_for_function(PLAYER_READY, timeout=60_000)
            settle(pg)
            with rerun(pg):
                pg.get_by_text("Rest | Contraction", exact=True).click()
            with rerun(pg):
                pg.get_by_text("Difference", exact=True).click()
            pg.wait_for_function(f"{P}.panelFrames().length === 3")
            _player_in_view(pg)
            pg.locator(".mp-counter").click()
            (x1, y1), (x2, y2) = screen(pg, [158, 140], 1), screen(pg, [238, 141], 1)
            with rerun(pg):
                pg.mouse.click(x1, y1)
                pg.mouse.click(x2, y2)
            pg.wait_for_function(f"{P}.data.calipers.length === 1 && {P}.drawn[1] === {P}.panelFrames()[1].frame")
            _player_in_view(pg, 230)  # with the row of other readers' toggles (Ana Sono's on)
            pg.mouse.move(5, 5)  # no hover coordinates in the hint
            shots.append(out / "2_physician_both_reviewers.png")
            pg.screenshot(path=str(shots[-1]))

            with rerun(pg):
                pg.get_by_text("Side by side", exact=True).click()
            pg.wait_for_function(f"{P}.panelFrames().length === 2")
            pg.evaluate(f"{P}.setSpeed(0.25); {P}.seek(8); {P}.play()")
            pg.wait_for_function(f"{P}.panelFrames().length === 3 && {P}.drawn[2] !== null && {P}.drawn[2] > 9")
            _player_in_view(pg)
            shots.append(out / "3_live_pair_playing.png")
            pg.screenshot(path=str(shots[-1]))
            pg.evaluate(f"{P}.pause()")
            settle(pg)

            pg.locator(".mp-counter").click()  # focus off the radio just clicked (keys skip inputs)
            pg.keyboard.press("?")
            pg.wait_for_function(f"{P}.helpShown")
            _player_in_view(pg)
            shots.append(out / "4_shortcuts.png")
            pg.screenshot(path=str(shots[-1]))
            pg.close()

            pg = new_page(browser, url + "/teaching", 1600, 1000, player=False)
            pg.get_by_role("button", name="Start session").wait_for()
            settle(pg)
            pg.locator(".st-key-teach_pick").scroll_into_view_if_needed()
            shots.append(out / "5_teaching_start_blinded.png")
            pg.screenshot(path=str(shots[-1]))
            pg.close()
    return shots


if __name__ == "__main__":
    for p in shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/shots")):
        print(p)
