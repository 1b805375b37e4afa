// msus cine player · test API: window.__msusPlayer, the state and controls browser tests and
// benchmarks read. Joined in only when the server runs with MSUS_PLAYER_TEST_API=1 (tests/browser.py
// sets it); the shipped player has no global.
function testApi(p) {
return {
    _player: p,
    get frame() { return p.frame; },
    get n() { return p.n; },
    get loaded() { return p.loaded; },
    get playing() { return p.playing; },
    get speed() { return p.speed; },
    get tool() { return p.tool; },
    get zoom() { return p.zoom; },
    get data() { return p.data; },
    get drawn() { return p.drawn.slice(); },
    get decoded() { return p.bitmaps.size; },
    get helpShown() { return p.help.style.display !== "none"; },
    get pendingEvents() { return p.outbox.length + (p.settling ? 1 : 0); },  // sent, not yet acknowledged, or due
    get stats() {
      const s = p.stats;
      const el = (s.tLast - s.t0) / 1000;
      const shown = s.displayed;
      const dur = (p.frameDur(p.frame) || p.medianDt) / 1000;
      return {
        displayed: shown, skipped: s.skipped,
        fps: el > 0 ? (shown - 1) / el : 0,
        target_fps: p.speed * 1000 / p.medianDt, elapsed_s: el, frame_s: dur,
        raf_hz: s.ticks > 1 ? (s.ticks - 1) / ((s.tTick - s.t0) / 1000) : 0,
        every_frame: p.everyFrame(),
      };
    },
    play: () => p.play(),
    pause: () => p.pause(),
    seek: (i) => p.seek(i),
    setSpeed: (s) => p.setSpeed(s),
    setMode: (m) => { p.mode = m; p.modeSel.value = m; },
    toScreen: (pt, panel = 0) => {
      const P = p.panels()[panel];
      const [x, y] = p.toScreen(P, pt);
      const r = p.canvas.getBoundingClientRect();
      return [r.left + x, r.top + y];
    },
    // title_bottom: the lowest pixel of the panel's title bar; image_top: the image's first row (css px)
    panelFrames: () => p.panels().map((P) => ({ frame: P.frame, kind: P.kind, title: P.title,
      title_bottom: P.y0 + TITLE_BAR_BOTTOM, image_top: P.oy })),
    pixel: (panel, pt) => {
      const P = p.panels()[panel];
      const [x, y] = p.toScreen(P, pt);
      const d = p.ctx.getImageData(Math.round(x * p.dpr), Math.round(y * p.dpr), 1, 1).data;
      return [d[0], d[1], d[2]];
    },
  };
}

EXTENSIONS.push((player) => {
  window.__msusPlayer = testApi(player);
  return () => { if (window.__msusPlayer && window.__msusPlayer._player === player) delete window.__msusPlayer; };
});
