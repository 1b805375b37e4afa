"""Text stays text in a real browser (issue 12, item 3): Markdown/HTML payloads in every text field.

A reviewer name (also from ``?reviewer=``), caliper labels, finding reasons and a file name carry
an image, a link, a bare URL and raw HTML that all point at a listener on loopback.  The page must
show them as literal text, hold no element pointing there, and the listener must see no request.
"""

from __future__ import annotations

import shutil
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from conftest import DATA, require_binary

pytestmark = pytest.mark.browser
CX50 = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"
PLAYER_READY = ("window.__msusPlayer && window.__msusPlayer.n > 0"
                " && window.__msusPlayer.loaded === window.__msusPlayer.n")


@pytest.fixture(scope="module")
def listener():
    hits: list[str] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], hits
    srv.shutdown()


def payloads(port: int) -> dict:
    base = f"http://127.0.0.1:{port}"
    return {
        "image": f"![x]({base}/img.png)",
        "link": f"[click me]({base}/link)",
        "auto": f"{base}/auto",
        "html": f'<img src="{base}/raw.png">',
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, listener):
    require_binary("chromium")
    from browser import streamlit_server
    import msus
    from msus.calibration import Calibration
    from msus.measure import make_measurement
    from msus.store import open_store
    from msus.store.engine import DB_FILENAME

    port, _ = listener
    p = payloads(port)
    samples, data = tmp_path_factory.mktemp("txt_samples"), tmp_path_factory.mktemp("txt_data")
    src = samples / "[a](http:__127.0.0.1_x)_loop.dcm"  # a file name that is Markdown too
    shutil.copy(CX50, src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cine = msus.load(src)
    store = open_store(f"sqlite:///{data / DB_FILENAME}")
    try:
        ref = store.register_loop(cine)
        store.add_measurement(ref, make_measurement(Calibration.manual(0.2), 0, (300, 300), (360, 300),
                                                    label=p["link"]), reviewer=p["image"])
        store.save_finding(ref, {"classification": "partial", "reasons": [p["image"], p["link"], p["auto"], p["html"]]},
                           reviewer=p["image"])
    finally:
        store.close()
        cine.close()
    # a closed tab's session is dropped after 2 s (frame tokens expire with it)
    with streamlit_server(samples, data, env={"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "2"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM_ARGS

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_payloads_render_as_literal_text_and_fetch_nothing(browser, server, listener):
    port, hits = listener
    p = payloads(port)
    pg = browser.new_page(viewport={"width": 1440, "height": 1400})
    pg.set_default_timeout(30_000)
    pg.goto(f"{server}/?reviewer={quote(p['image'])}")
    pg.wait_for_function(PLAYER_READY, timeout=60_000)
    expect(pg.get_by_role("button", name="Mark final")).to_be_visible(timeout=30_000)  # the finding panel is drawn
    # what the user reads (U+2060 word joiners, invisible, keep URLs from being auto-linked)
    shown = pg.evaluate("() => document.body.innerText").replace("\u2060", "")
    assert f"by {p['image']}" in shown  # the finding panel names its reviewer as typed
    for k in ("image", "link", "auto", "html"):
        assert p[k] in shown, k  # every reason, literally
    assert f"Reviewer: {p['image']}" in shown  # the name from ?reviewer=, in the sidebar
    pg.locator("[data-testid='stExpander'] summary", has_text="Export").click()
    pg.screenshot(path="/tmp/msus_text_payloads.png", full_page=True)
    pointing = pg.evaluate(
        "(port) => [...document.querySelectorAll('[src],[href],[srcset]')]"
        ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('srcset'))"
        ".filter(v => v && v.includes(':' + port))", str(port))
    assert pointing == []
    links = pg.evaluate("() => [...document.querySelectorAll('a')].map(a => a.textContent)")
    assert not [t for t in links if "click me" in t or "127.0.0.1" in t]
    assert hits == []
    pg.close()


def test_frame_urls_are_bound_to_the_browser_and_expire_with_the_session(browser, server):
    import time

    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.goto(server)
    pg.wait_for_function(PLAYER_READY, timeout=60_000)
    urls = pg.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)"
                       ".filter(n => n.includes('/msus/frames/'))")
    assert urls, "the player fetched no frame"
    url = urls[0]
    assert ctx.request.get(url).status == 200  # this browser: the frame
    other = browser.new_context()
    assert other.request.get(url).status == 404  # the same URL from another browser: nothing
    other.close()
    pg.close()  # the tab closes: its session ends after server.disconnectedSessionTTL
    deadline = time.monotonic() + 90
    status = 200
    while status != 404 and time.monotonic() < deadline:
        status = ctx.request.get(url).status
        if status != 404:
            p2 = ctx.new_page()  # another session's script run lets the server collect ended sessions
            p2.goto(server)
            p2.wait_for_function(PLAYER_READY, timeout=60_000)
            p2.close()
    assert status == 404  # the token died with its session, even in the browser that held it
    ctx.close()
