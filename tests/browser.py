"""Browser-test helpers: a Streamlit server on loopback, Debian Chromium, and waits on state.

Used by the ``tests/test_browser_*.py`` files and by ``benchmarks/bench_player.py`` (which
imports them from here).  Waiting is always on what the page shows or reports, never on time:

* :func:`settle` — no script run in progress, no element left stale, and every player event acknowledged (the player's
  ``pendingEvents`` counts events sent but not yet acknowledged *and* a frame report still due).
* :func:`rerun` — around an action that makes the app rerun: waits until a run that ended after
  the action has finished, then :func:`settle`.  Runs are counted in the page from Streamlit's
  own "script finished" messages on its websocket (:data:`RUN_WATCH`), so a run too short to be
  seen by polling, or rendered in one batch with the run before, is still counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian chromium
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PLAYER_READY = ("window.__msusPlayer && window.__msusPlayer.n > 0"
                " && window.__msusPlayer.loaded === window.__msusPlayer.n")
#: Counts finished script runs in the page (``window.__msusRuns``), installed before any page script.
#: A run is counted when its ``script_finished`` message (ForwardMsg field 6, any status but
#: "finished early for a rerun") reaches the page's websocket — after Streamlit's own handler has
#: dispatched it and a frame has been drawn.  The ``data-test-script-state`` attribute alone misses
#: runs: a short run's "running" and "notRunning" can be rendered in one React batch, so the
#: attribute never changes.  ``window.__msusSeen`` counts those attribute changes too, and
#: :func:`rerun` takes either signal (the messages alone were seen to miss a run of the export panel).
RUN_WATCH = """
(() => {
  window.__msusRuns = 0;
  window.__msusSeen = 0;
  const obs = new MutationObserver((records) => {
    for (const r of records) if (r.oldValue === "running") window.__msusSeen++;
  });
  obs.observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                         attributeFilter: ["data-test-script-state"]});
  const varint = (b, i) => { let v = 0, s = 1, c; do { c = b[i++]; v += (c & 0x7f) * s; s *= 128; } while (c & 0x80); return [v, i]; };
  const finishedRun = (buf) => {  // the top-level fields of one ForwardMsg
    const b = new Uint8Array(buf); let i = 0;
    while (i < b.length) {
      let tag, v; [tag, i] = varint(b, i);
      const field = Math.floor(tag / 8), wire = tag & 7;
      if (wire === 0) { [v, i] = varint(b, i); if (field === 6) return v !== 2; }
      else if (wire === 2) { [v, i] = varint(b, i); i += v; }
      else if (wire === 1) i += 8; else if (wire === 5) i += 4; else return false;
    }
    return false;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        if (e.data instanceof ArrayBuffer && finishedRun(e.data))  // after Streamlit's handler and a frame
          setTimeout(() => requestAnimationFrame(() => setTimeout(() => { window.__msusRuns++; })));
      });
    }
  };
})();
"""
#: Settled: no run in progress, no element left stale by a run (a run that ended in ``st.rerun()``
#: leaves "notRunning" for an instant before the next one), every player event acknowledged.
_SETTLED = ("(() => { const s = document.querySelector('[data-test-script-state]');"
            " return s && s.getAttribute('data-test-script-state') === 'notRunning'"
            " && !document.querySelector('[data-stale=true]')"
            " && (!window.__msusPlayer || window.__msusPlayer.pendingEvents === 0); })()")


# ---- a test loop on disk ----------------------------------------------------------------------
def loop_frames(n: int, rows: int, cols: int) -> np.ndarray:
    """Grey frames with a moving bar and an index-coded 40×40 patch at x = 20…59, y = 100…139.

    The patch's grey level is ``(2 * i) % 256`` so a test can tell frame ``i`` from its pixels.
    """
    y, x = np.mgrid[0:rows, 0:cols]
    base = (40 + 60 * (y / rows)).astype(np.uint8)
    out = np.empty((n, rows, cols), np.uint8)
    for i in range(n):
        f = base.copy()
        c = int((i / max(1, n)) * cols)
        f[:, max(0, c - 6): c + 6] = 220
        f[rows // 2 - 3: rows // 2 + 3, :] = 150
        f[100:140, 20:60] = (2 * i) % 256
        out[i] = f
    return out


def write_loop_dicom(path, n: int = 600, rows: int = 600, cols: int = 800, fps: float = 30.0,
                     mm_per_px: float = 0.1, quality: int = 92) -> Path:
    """Write a JPEG-baseline US multi-frame DICOM with a US region calibration and FrameTime."""
    from msus.synth.dicom import TissueRegion, us_multiframe_dataset, write_dicom

    ds = us_multiframe_dataset(loop_frames(n, rows, cols), fps=fps, jpeg=True, quality=quality,
                               region=TissueRegion.whole(rows, cols, mm_per_px), patient="BENCH^LOOP",
                               elements={"Manufacturer": "msus benchmark"})
    return write_dicom(ds, path)


# ---- a server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(samples_dir, data_dir=None, timeout_s: float = 60.0, env: dict | None = None, script=None):
    """``streamlit run SCRIPT`` (default the app, ``app.py``) on a free loopback port; yields the base URL.

    The player's test API (``window.__msusPlayer``) is on (``MSUS_PLAYER_TEST_API=1``).

    Raises RuntimeError with the end of the server's log when it does not answer within ``timeout_s``.
    """
    import urllib.request

    port = free_port()
    e = dict(os.environ, MSUS_SAMPLES_DIR=str(samples_dir), MSUS_DATA_DIR=str(data_dir or samples_dir),
             MSUS_LOOPS_DIR=str(data_dir or samples_dir),
             MSUS_PLAYER_TEST_API="1")  # the player's window.__msusPlayer (not in the shipped player)
    e.update(env or {})
    cmd = [sys.executable, "-m", "streamlit", "run", str(script or ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=e, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:  # polling a starting process's health endpoint (no page to wait on yet)
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("streamlit did not start: " + log.read().decode(errors="replace")[-2000:])
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ---- the browser --------------------------------------------------------------------------------
@contextlib.contextmanager
def chromium():
    """Debian Chromium under Playwright (headless, flags :data:`CHROMIUM_ARGS`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser, url: str, width: int = 1440, height: int = 1000, player: bool = True, timeout_ms: int = 30_000,
             timezone_id: str | None = None):
    """A fresh page on ``url`` (run counter installed); with ``player``, waits until its frames are
    loaded; then until the page has settled.  ``timezone_id``: the browser's time zone."""
    pg = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True,
                          timezone_id=timezone_id)
    pg.add_init_script(RUN_WATCH)
    pg.set_default_timeout(timeout_ms)
    pg.goto(url)
    if player:
        pg.wait_for_function(PLAYER_READY, timeout=60_000)
    settle(pg)
    return pg


def open_player(browser, url: str, width: int = 1400, height: int = 1000):
    """A page on ``url`` with the player's frames all loaded and the current one drawn."""
    page = new_page(browser, url, width, height)
    page.wait_for_function("window.__msusPlayer.drawn[0] === window.__msusPlayer.frame", timeout=60_000)
    return page


# ---- waiting on state -----------------------------------------------------------------------------
def runs(pg) -> int:
    """Script runs the page has seen finish."""
    return pg.evaluate("window.__msusRuns || 0")


def settle(pg, timeout_ms: int | None = None) -> None:
    """Until no script run is in progress and every player event is acknowledged."""
    pg.wait_for_function(_SETTLED, timeout=timeout_ms)


@contextlib.contextmanager
def rerun(pg, timeout_ms: int | None = None):
    """Around an action that makes the app rerun: afterwards a run has finished and all settled."""
    before = runs(pg)
    seen = pg.evaluate("window.__msusSeen || 0")
    yield
    try:  # either signal: a script-finished message, or the script-state attribute leaving "running"
        pg.wait_for_function(f"(window.__msusRuns || 0) > {before} || (window.__msusSeen || 0) > {seen}",
                             timeout=timeout_ms)
        settle(pg, timeout_ms)
    except Exception as exc:  # a timeout: say what the page was doing, keep a picture of it
        raise AssertionError(f"no finished run after the action ({before} runs before): {page_state(pg)}") from exc


_STATE = """() => { const s = document.querySelector('[data-test-script-state]'); const p = window.__msusPlayer;
  return {runs: window.__msusRuns || 0, seen: window.__msusSeen || 0, script: s && s.getAttribute('data-test-script-state'),
          stale: document.querySelectorAll('[data-stale=true]').length,
          player: p ? {frame: p.frame, playing: p.playing, pending: p.pendingEvents} : null,
          exception: [...document.querySelectorAll('[data-testid=stException]')].map((e) => e.innerText.slice(0, 200))}; }"""


def page_state(pg) -> str:
    """The page's run counter, script state, stale elements and player state, and a screenshot's path."""
    out = ROOT / "artifacts" / "browser_failures"
    out.mkdir(parents=True, exist_ok=True)
    shot = out / f"{time.strftime('%H%M%S')}_{os.getpid()}.png"
    try:
        state = pg.evaluate(_STATE)
        pg.screenshot(path=str(shot), full_page=True)
    except Exception as exc:  # the page itself is gone
        return f"page unavailable ({type(exc).__name__})"
    return f"{state}; screenshot {shot.relative_to(ROOT)}"


_STILL = """(el) => new Promise((done) => {
  const at = () => { const r = el.getBoundingClientRect();
    return [r.top, r.left, r.height, ...[...document.querySelectorAll('*')].filter((e) => e.scrollTop > 0)
      .map((e) => e.scrollTop)].join(); };
  let last = at(), still = 0;
  const tick = () => { const now = at(); still = now === last ? still + 1 : 0; last = now;
                       if (still >= 8) done(true); else requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
})"""


def hold_still(locator) -> None:
    """Until the element has not moved and nothing in the page has scrolled for eight animation
    frames (an expander opening, a smooth scroll or a reflow after a rerun have ended)."""
    locator.evaluate(_STILL)


def choose(pg, key: str, option: str) -> None:
    """Pick ``option`` (the whole text, else the first option starting with it) in the selectbox
    with widget key ``key`` (the page settled first).

    Streamlit's combobox closes its list on any scroll, so the box is scrolled (at once) to the
    middle of the window and the page is let come to rest (a smooth scroll or an expander still
    opening would close the list) before the list is opened and the option chosen by keyboard.
    """
    settle(pg)
    box = pg.locator(f".st-key-{key} input")
    box.evaluate("(e) => e.scrollIntoView({block: 'center', behavior: 'instant'})")  # not smooth: no late scroll
    hold_still(box)
    before = runs(pg)
    box.focus()
    box.press("ArrowDown")  # opens the list (a click on an already focused box may not)
    options = pg.get_by_role("listbox").get_by_role("option")
    try:
        options.first.wait_for(timeout=15_000)
    except Exception as e:  # say why the list is not open (a rerun, focus lost), then fail
        why = pg.evaluate("[document.activeElement && document.activeElement.outerHTML.slice(0, 120),"
                          " document.querySelector('[data-test-script-state]').getAttribute('data-test-script-state')]")
        raise AssertionError(f"the list of {key} did not open: runs {before}->{runs(pg)}, focus/state {why}") from e
    names = [t.strip() for t in options.all_inner_texts()]
    want = option if option in names else next((n for n in names if n.startswith(option)), None)
    assert want is not None, f"{option!r} not among {names}"
    # by keyboard: a click would scroll the option into view, and a scroll closes the list
    focused = pg.locator("[role=listbox] [role=option][data-focused]")
    for _ in range(len(names) + 1):
        if focused.count() and focused.first.inner_text().strip() == want:
            break
        box.press("ArrowDown")
    with rerun(pg):
        box.press("Enter")
    if pg.get_by_role("listbox").count():  # a multiselect keeps its list open for the next pick
        box.press("Escape")
        pg.get_by_role("listbox").wait_for(state="detached")


def screen(pg, pt, panel=0):
    """Page coordinates of full-frame pixel ``pt`` in player panel ``panel``."""
    return pg.evaluate("(a) => window.__msusPlayer.toScreen(a[0], a[1])", [pt, panel])


def main_text(pg) -> str:
    return pg.locator("[data-testid=stMain]").inner_text()


def alerts(pg) -> list[str]:
    return [a.inner_text() for a in pg.locator("[data-testid=stAlert]").all()]


def no_traceback(pg) -> None:
    assert pg.locator("[data-testid=stException]").count() == 0
    assert "Traceback" not in main_text(pg)
