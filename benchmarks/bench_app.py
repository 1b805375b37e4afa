"""The app as a reader meets it: first paint of a loop and opening a loop from the worklist.

Figures (headless Debian Chromium against ``streamlit run app.py``; medians of a few tries, each
in a fresh browser page, i.e. a fresh Streamlit session):

* ``app bare page load`` — the Worklist page until its first script run has ended (no loop, no
  player): the baseline of the two figures below.
* ``app first paint of a loop`` — the Review page (the root URL) until the player has drawn the
  loop's first frame (goal ≤ 2 s), ratio to the bare page load.
* ``app open from the worklist`` — on the Worklist page, *Open in Review* until the player has
  drawn the loop (goal ≤ 2 s), ratio to the bare page load.

The loop is the bundled full-tear phantom (40 frames, 400×300), with a saved finding so it is
listed on the worklist.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from tests.browser import CHROMIUM, chromium, new_page, rerun, settle, streamlit_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "phantom_full_tear.dcm"
DRAWN = ("window.__msusPlayer && window.__msusPlayer.n > 0"
         " && window.__msusPlayer.drawn[0] === window.__msusPlayer.frame")
TRIES = 5


def _seed(samples: Path, db: str) -> None:
    import msus
    from msus.store import open_store

    cine = msus.load(samples / SAMPLE)
    store = open_store(db)
    store.save_finding(store.register_loop(cine), {"classification": "suspected_full_thickness", "reasons": []},
                       reviewer="bench", kind="manual")


def _timed_page(browser, url: str, ready: str | None) -> tuple[float, object]:
    t0 = time.perf_counter()
    pg = new_page(browser, url, player=False, timeout_ms=60_000)
    if ready:
        pg.wait_for_function(ready, timeout=60_000)
    return (time.perf_counter() - t0) * 1000, pg


def run() -> list[Figure]:
    import os

    if not os.path.exists(CHROMIUM):
        return [Figure("app first paint of a loop", float("nan"), "ms", note="SKIPPED: Debian chromium missing")]
    tmp = Path(tempfile.mkdtemp(prefix="msus-bench-app-"))
    try:
        samples, data = tmp / "samples", tmp / "data"
        samples.mkdir()
        data.mkdir()
        shutil.copy(ROOT / "samples" / SAMPLE, samples / SAMPLE)
        db = f"sqlite:///{data / 'findings.sqlite3'}"
        _seed(samples, db)
        bare, paint, opened = [], [], []
        with streamlit_server(samples, data, env={"MSUS_DATABASE_URL": db}) as url, chromium() as browser:
            _timed_page(browser, url, DRAWN)[1].close()  # warm: decoded loop cached, modules imported
            for _ in range(TRIES):
                ms, pg = _timed_page(browser, url + "/worklist", None)
                bare.append(ms)
                button = pg.get_by_role("button", name="Open in Review")
                t0 = time.perf_counter()
                with rerun(pg, 60_000):
                    button.click()
                pg.wait_for_function(DRAWN, timeout=60_000)
                opened.append((time.perf_counter() - t0) * 1000)
                settle(pg)
                pg.close()
                ms, pg = _timed_page(browser, url, DRAWN)
                paint.append(ms)
                pg.close()
        b = statistics.median(bare)
        p, o = statistics.median(paint), statistics.median(opened)
        return [
            Figure("app bare page load (worklist, no loop)", b, "ms", None, None,
                   f"median of {TRIES}; baseline of the figures below"),
            Figure("app first paint of a loop", p, "ms", b, p / b,
                   "Review page until the first frame is drawn; goal <= 2000 ms"),
            Figure("app open from the worklist", o, "ms", b, o / b,
                   "Open in Review until the loop's frame is drawn; goal <= 2000 ms"),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
