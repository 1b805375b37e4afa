"""The review app's player: playback fps in headless Chromium, server time per rerun, bytes per caliper.

Figures (each with a baseline measured in the same run):

* ``player fps @30`` / ``@50`` — frames shown per second while playing a 600-frame 600×800 loop,
  baseline = the target rate (ratio goal ≥ 0.97); ``skipped frames`` (goal 0).
* ``rerun ms: step`` / ``rerun ms: caliper`` — server time of one script run after a frame event and
  after a caliper event (goal ≤ 30 ms), baseline = a bare rerun of the same page with no event.
* ``bytes per caliper`` — size of the player data after adding one caliper minus before.

Needs Debian chromium (``/usr/bin/chromium``) and Playwright; without them only the server figures
are produced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

ROOT = Path(__file__).resolve().parents[1]
# the loop writer, server launcher and Chromium launch are the browser tests' own helpers
from tests.browser import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, free_port, loop_frames, open_player, streamlit_server, write_loop_dicom,
)

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "free_port", "loop_frames", "open_player", "streamlit_server",
           "write_loop_dicom", "measure_playback", "rerun_times", "run"]


def measure_playback(page, speed: float, seconds: float) -> dict:
    page.evaluate("(s) => { const p = window.__msusPlayer; p.pause(); p.seek(0); p.setMode('loop'); p.setSpeed(s); p.play(); }", speed)
    page.wait_for_timeout(int(seconds * 1000))
    stats = page.evaluate("() => { const p = window.__msusPlayer; const s = p.stats; p.pause(); return s; }")
    return stats


# ---- server-side rerun time -------------------------------------------------------------------
def rerun_times(sample: Path, repeats: int = 15) -> dict:
    """Median script time (ms) of a bare rerun, a frame-event rerun and a caliper-event rerun.

    The event is applied as the player callback would (``Review.handle_log``), then the page
    script runs; its time is what ``app.py`` records in ``st.session_state["msus_run_ms"]``.
    """
    from streamlit.testing.v1 import AppTest

    os.environ["MSUS_SAMPLES_DIR"] = str(sample.parent)
    os.environ["MSUS_DATA_DIR"] = str(sample.parent)  # any store file stays in the temporary folder
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    key = at.session_state["msus_current"]
    rv = at.session_state["msus_reviews"][key]

    def timed(prepare) -> float:
        out = []
        for k in range(repeats):
            t0 = time.perf_counter()
            prepare(k)  # the component callback's work
            pre = (time.perf_counter() - t0) * 1000
            at.run()
            out.append(pre + at.session_state["msus_run_ms"])  # + the script's own time (app.py measures it)
        return float(np.median(out))

    def send(ev):
        rv.handle_log({"sid": "bench", "events": [dict(ev, seq=rv.event_seq + 1)]})

    from msus.ui.player import player_data

    bare = timed(lambda k: None)
    step = timed(lambda k: send({"type": "frame", "frame": (k * 7) % rv.n_frames}))
    before = len(json.dumps(player_data_for(at, rv, player_data)))
    cal = timed(lambda k: send({"type": "caliper_add", "frame": k % rv.n_frames, "p1": [100 + k, 100], "p2": [300, 200 + k]}))
    after = len(json.dumps(player_data_for(at, rv, player_data)))
    return {"bare_ms": bare, "step_ms": step, "caliper_ms": cal, "bytes_per_caliper": (after - before) / repeats,
            "data_bytes": after}


def player_data_for(at, rv, player_data):
    import msus

    from msus.ui.sources import list_loops

    cine = msus.load(list_loops(Path(os.environ["MSUS_SAMPLES_DIR"]))[0])
    return player_data(cine, rv, "/msus/frames/x/", "x")


def run() -> list[Figure]:
    figures: list[Figure] = []
    tmp = Path(tempfile.mkdtemp(prefix="msus-bench-player-"))
    try:
        (tmp / "s30").mkdir()
        loop30 = write_loop_dicom(tmp / "s30" / "loop30.dcm", n=600, fps=30)
        r = rerun_times(loop30)
        figures += [
            Figure("app rerun ms: frame event", r["step_ms"], "ms", r["bare_ms"], r["step_ms"] / r["bare_ms"],
                   "600-frame loop; baseline = rerun with no event; goal <= 30 ms"),
            Figure("app rerun ms: caliper event", r["caliper_ms"], "ms", r["bare_ms"], r["caliper_ms"] / r["bare_ms"],
                   "baseline = rerun with no event; goal <= 30 ms"),
            Figure("app bytes per caliper", r["bytes_per_caliper"], "B", r["data_bytes"],
                   r["bytes_per_caliper"] / r["data_bytes"], "baseline = whole player data (600 frame times + calipers)"),
        ]
        if not os.path.exists(CHROMIUM):
            figures.append(Figure("player fps", float("nan"), "fps", note="SKIPPED: Debian chromium missing"))
            return figures
        (tmp / "s50").mkdir()
        write_loop_dicom(tmp / "s50" / "loop50.dcm", n=600, fps=50)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for folder, fps in (("s30", 30), ("s50", 50)):
                    with streamlit_server(tmp / folder) as url:
                        page = open_player(browser, url)
                        measure_playback(page, 1.0, 1.0)  # warm the decode cache
                        s = measure_playback(page, 1.0, 8.0)
                        page.close()
                    figures.append(Figure(f"player fps @{fps} (600x800, 600 frames)", s["fps"], "fps", s["target_fps"],
                                          s["fps"] / s["target_fps"], "baseline = target rate; goal ratio >= 0.97"))
                    figures.append(Figure(f"player skipped frames @{fps}", s["skipped"], "frames", s["displayed"],
                                          s["skipped"] / max(1, s["displayed"]), "baseline = frames shown in 8 s; goal 0"))
                    figures.append(Figure(f"player rAF rate @{fps}", s["raf_hz"], "Hz", 60.0, s["raf_hz"] / 60.0,
                                          "browser animation callbacks/s during playback (machine load shows here)"))
            finally:
                browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures
