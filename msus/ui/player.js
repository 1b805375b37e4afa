// msus cine player: the browser side of msus/ui/player.py (st.components.v2, no build step).
//
// Frames are fetched once as JPEG from the frame route (unguessable per-session token in the
// URL) and drawn on a canvas with requestAnimationFrame at the loop's own timing.  Python only
// hears events, appended to a small acknowledged log in the component state "log":
//   frame {frame}                after stepping/pausing settles
//   caliper_add {frame,p1,p2}    two clicks with the caliper tool
//   caliper_move {id,frame,p1,p2} an endpoint dragged
//   mark {which,frame}           rest / contraction
//   calib_points {frame,p1,p2}   two clicks with the calibrate tool
// Points are (x, y) in full-frame pixels, pixel centres at integers.
// The default export is called again on every data change: it updates, never rebuilds.

const PLAYERS = new WeakMap();
const SPEEDS = [0.1, 0.25, 0.5, 1, 1.5, 2];
const HIT_PX = 9;
const WINDOW = 30; // frames decoded ahead of the playhead (ImageBitmaps, decoded off the main thread)
const PAIR_CAPTION_STRIP = 36; // px under side-by-side panels for the HUD lines (see panels())
const SHORTCUTS = [
  ["Space", "play / pause"], ["← → ↑ ↓", "one frame back / forward (Shift: 10)"], ["Home  End", "first / last frame"],
  ["R  C", "mark rest / contraction"], ["A  B", "set the A–B range"], ["[  ]", "slower / faster"],
  ["M  P  W  K", "caliper · pan · window/level · calibrate"], ["+  −  F", "zoom in · out · fit (wheel zooms too)"],
  ["Esc", "cancel a half-drawn caliper · close this help"], ["?", "show / hide this help"],
];
// Keys reach the player anywhere on the page while no text field, list or button has focus.
let ACTIVE = null; // the player the page-wide keys go to (the last one updated)
function typingIn(t) {
  if (!t || !t.tagName) return false;
  if (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT", "BUTTON"].includes(t.tagName)) return true;
  const role = t.getAttribute && t.getAttribute("role");
  return ["combobox", "textbox", "listbox", "option", "grid", "gridcell", "slider", "button", "tab", "switch"].includes(role);
}
document.addEventListener("keydown", (e) => {
  const p = ACTIVE;
  if (!p || !p.root.isConnected || e.ctrlKey || e.metaKey || e.altKey) return;
  const path = e.composedPath ? e.composedPath() : [e.target];
  if (path.includes(p.root)) return; // the player's own listener has it
  if (typingIn(path[0]) || path.some((n) => n && n.getAttribute && n.getAttribute("role") === "dialog")) return;
  p.onKey(e);
}, true);
const PAIR_TITLE_STRIP = 32; // px above side-by-side panels for their titles: no title covers the image top

function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function button(parent, text, title, onClick, cls) {
  const b = el("button", "mp-btn" + (cls ? " " + cls : ""), parent, text);
  b.type = "button";
  b.title = title;
  b.addEventListener("click", (ev) => { ev.preventDefault(); onClick(ev); });
  return b;
}

class Player {
  constructor(parentElement) {
    this.parent = parentElement;
    this.sid = Math.random().toString(36).slice(2, 10);
    this.seq = 0;
    this.outbox = [];
    this.data = {};
    this.loopId = null;
    this.blobs = [];
    this.failed = new Set();
    this.bitmaps = new Map();
    this.decoding = new Set();
    this.drawn = [];
    this.loaded = 0;
    this.frame = 0;
    this.playing = false;
    this.speed = 1;
    this.mode = "loop"; // loop | pingpong | once
    this.dir = 1;
    this.a = null;
    this.b = null;
    this.tool = "caliper"; // caliper | pan | wl | calibrate
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.brightness = 1;
    this.contrast = 1;
    this.anchor = null; // first click of a two-click tool
    this.hover = null;
    this.drag = null;
    this.pending = []; // calipers sent, not yet acknowledged
    this.moves = {}; // id -> {p1, p2, seq}
    this.lastCommand = 0;
    this.lastSentFrame = null;
    this.frameTimer = null;
    this.stats = { displayed: 0, skipped: 0, t0: 0, tLast: 0, playStartFrame: 0 };
    this.scratch = {};
    this.build();
    window.__msusPlayer = this.api();
    // Keys work as soon as the viewer opens (Space plays), unless the user is typing elsewhere.
    setTimeout(() => {
      const a = document.activeElement;
      if (!a || a === document.body) this.root.focus({ preventScroll: true });
    }, 0);
  }

  // ---------------------------------------------------------------- DOM
  build() {
    const root = el("div", "msus-player", this.parent);
    root.tabIndex = 0;
    root.setAttribute("role", "application");
    root.setAttribute("aria-label", "cine player");
    this.root = root;
    const stage = el("div", "mp-stage", root);
    this.stage = stage;
    this.canvas = el("canvas", "mp-canvas", stage);
    this.ctx = this.canvas.getContext("2d");
    this.hudFrame = el("div", "mp-hud mp-hud-tl", stage);
    this.hudBadge = el("div", "mp-hud mp-hud-br", stage);
    this.hudInfo = el("div", "mp-hud mp-hud-bl", stage);

    const tl = el("div", "mp-timeline", root);
    this.marksLayer = el("div", "mp-marks", tl);
    this.slider = el("input", "mp-slider", tl);
    this.slider.type = "range";
    this.slider.min = 0;
    this.slider.step = 1;
    this.slider.setAttribute("aria-label", "frame");
    this.slider.addEventListener("input", () => { this.pause(); this.seek(+this.slider.value); });

    const bar = el("div", "mp-bar", root);
    const g1 = el("div", "mp-group", bar);
    button(g1, "|◀", "First frame (Home)", () => { this.pause(); this.seek(this.rangeLo()); });
    button(g1, "−10", "Back 10 frames (Shift+←)", () => this.step(-10));
    button(g1, "◀", "Previous frame (← or ↑)", () => this.step(-1));
    this.playBtn = button(g1, "▶", "Play / pause (Space)", () => this.toggle(), "mp-play");
    button(g1, "▶", "Next frame (→ or ↓)", () => this.step(1)).classList.add("mp-next");
    button(g1, "+10", "Forward 10 frames (Shift+→)", () => this.step(10));
    button(g1, "▶|", "Last frame (End)", () => { this.pause(); this.seek(this.rangeHi()); });
    this.counter = el("span", "mp-counter", g1);

    const g2 = el("div", "mp-group", bar);
    this.speedSel = el("select", "mp-select", g2);
    this.speedSel.title = "Playback speed";
    for (const s of SPEEDS) {
      const o = el("option", null, this.speedSel, s + "×");
      o.value = s;
      if (s === 1) o.selected = true;
    }
    this.speedSel.addEventListener("change", () => this.setSpeed(+this.speedSel.value));
    this.modeSel = el("select", "mp-select", g2);
    this.modeSel.title = "Loop mode";
    for (const [v, t] of [["loop", "loop"], ["pingpong", "ping-pong"], ["once", "once"]]) {
      const o = el("option", null, this.modeSel, t);
      o.value = v;
    }
    this.modeSel.addEventListener("change", () => { this.mode = this.modeSel.value; this.dir = 1; this.restartClock(); });
    button(g2, "A", "Set A (range start) at this frame", () => this.setA());
    button(g2, "B", "Set B (range end) at this frame", () => this.setB());
    button(g2, "A–B ✕", "Clear the A–B range", () => { this.a = this.b = null; this.renderMarks(); this.updateHud(); });

    const bar2 = el("div", "mp-bar", root);
    const g3 = el("div", "mp-group", bar2);
    el("span", "mp-lbl", g3, "Mark");
    button(g3, "Rest", "Mark this frame as the rest frame (R)", () => this.mark("rest"), "mp-mark-rest");
    button(g3, "Contraction", "Mark this frame as the contraction frame (C)", () => this.mark("contraction"), "mp-mark-con");
    const g4 = el("div", "mp-group", bar2);
    this.toolBtns = {};
    for (const [t, label, title] of [
      ["caliper", "Caliper", "Caliper: click two points; drag an end to adjust (M)"],
      ["pan", "Pan", "Pan: drag the image (P); Shift+drag pans in any tool"],
      ["wl", "W/L", "Window/level: drag ↔ contrast, ↕ brightness (W)"],
      ["calibrate", "Calibrate", "Manual calibration: click two points on the depth scale (K)"],
    ]) {
      this.toolBtns[t] = button(g4, label, title, () => this.setTool(t), "mp-tool");
    }
    const g5 = el("div", "mp-group", bar2);
    button(g5, "−", "Zoom out (-)", () => this.zoomBy(1 / 1.25));
    this.zoomLabel = el("span", "mp-zoom", g5, "100%");
    button(g5, "+", "Zoom in (+ or wheel)", () => this.zoomBy(1.25));
    button(g5, "Fit", "Fit the image (F)", () => this.fit());
    const g6 = el("div", "mp-group mp-wl", bar2);
    el("span", "mp-lbl", g6, "Brightness");
    this.bSlider = this.range(g6, 0.2, 3, 0.05, 1, (v) => { this.brightness = v; this.draw(); });
    el("span", "mp-lbl", g6, "Contrast");
    this.cSlider = this.range(g6, 0.2, 3, 0.05, 1, (v) => { this.contrast = v; this.draw(); });
    button(g6, "Reset", "Reset window/level", () => this.setWL(1, 1));
    this.hudHint = el("span", "mp-hint", bar2);
    this.helpBtn = button(bar2, "?", "Keyboard shortcuts (?)", () => this.toggleHelp(), "mp-help-btn");
    this.help = el("div", "mp-help", stage);
    el("div", "mp-help-title", this.help, "Keyboard shortcuts (anywhere on the page, outside text fields)");
    for (const [keys, what] of SHORTCUTS) {
      const row = el("div", "mp-help-row", this.help);
      el("span", "mp-help-keys", row, keys);
      el("span", "mp-help-what", row, what);
    }
    this.help.style.display = "none";

    // input
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.onDown(e));
    c.addEventListener("pointermove", (e) => this.onMove(e));
    c.addEventListener("pointerup", (e) => this.onUp(e));
    c.addEventListener("pointerleave", () => { this.hover = null; this.draw(); });
    c.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    root.addEventListener("keydown", (e) => this.onKey(e));
    for (const t of ["keyup", "keypress"]) {
      root.addEventListener(t, (e) => { if (e.key !== "Tab") e.stopPropagation(); });
    }
    root.addEventListener("pointerdown", () => {
      if (document.activeElement !== root && !root.contains(this.parent.activeElement || null)) root.focus({ preventScroll: true });
    });
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(root);
    this.setTool("caliper");
  }

  range(parent, min, max, step, value, onInput) {
    const r = el("input", "mp-range", parent);
    Object.assign(r, { type: "range", min, max, step, value });
    r.addEventListener("input", () => onInput(+r.value));
    return r;
  }

  destroy() {
    this.playing = false;
    this.ro && this.ro.disconnect();
    clearTimeout(this.frameTimer);
    this.settling = false;
    if (window.__msusPlayer && window.__msusPlayer._player === this) delete window.__msusPlayer;
    if (ACTIVE === this) ACTIVE = null;
  }

  // ---------------------------------------------------------------- data from Python
  toggleHelp(show) {
    const on = show === undefined ? this.help.style.display === "none" : show;
    this.help.style.display = on ? "" : "none";
  }

  update(data, setStateValue) {
    ACTIVE = this;
    this.setStateValue = setStateValue;
    this.data = data || {};
    const d = this.data;
    if (d.ack && d.ack.sid === this.sid) {
      const s = d.ack.seq;
      this.outbox = this.outbox.filter((e) => e.seq > s);
      this.pending = this.pending.filter((p) => p.seq > s);
      for (const id of Object.keys(this.moves)) if (this.moves[id].seq <= s) delete this.moves[id];
    }
    if (d.loop_id !== this.loopId) this.openLoop(d);
    if (d.command && d.command.seq > this.lastCommand) {
      this.lastCommand = d.command.seq;
      if (typeof d.command.seek === "number") { this.pause(); this.seek(d.command.seek, false); }
    }
    this.hudBadge.textContent = d.badge || "";
    this.hudBadge.className = "mp-hud mp-hud-br " + (d.calibrated ? "mp-cal-ok" : "mp-cal-none");
    this.renderMarks();
    this.resize();
  }

  openLoop(d) {
    this.loopId = d.loop_id;
    this.pause();
    this.n = d.n || 0;
    this.w = d.width || 1;
    this.h = d.height || 1;
    this.times = d.times_ms && d.times_ms.length === this.n ? d.times_ms : Array.from({ length: this.n }, (_, i) => (i * 1000) / (d.fps || 30));
    const dts = [];
    for (let i = 1; i < this.n; i++) dts.push(this.times[i] - this.times[i - 1]);
    dts.sort((x, y) => x - y);
    this.medianDt = dts.length ? dts[Math.floor(dts.length / 2)] || 1000 / 30 : 1000 / (d.fps || 30);
    this.a = this.b = null;
    this.anchor = null;
    this.pending = [];
    this.moves = {};
    this.zoom = 1;
    this.panX = this.panY = 0;
    this.slider.max = Math.max(0, this.n - 1);
    this.frame = Math.min(Math.max(0, d.start_frame || 0), Math.max(0, this.n - 1));
    this.lastSentFrame = this.frame;
    this.scratch = {};
    this.dropBitmaps();
    this.blobs = new Array(this.n);
    this.failed = new Set();
    this.loaded = 0;
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const base = d.url || "";
    // Current frame first, then the rest in order, a few requests at a time.
    const order = [this.frame];
    for (let i = 0; i < this.n; i++) if (i !== this.frame) order.push(i);
    let next = 0;
    const worker = async () => {
      while (next < order.length && gen === this.loadGen) {
        const i = order[next++];
        let blob = null;
        try {
          const r = await fetch(base + i + ".jpg", { credentials: "same-origin" });
          if (r.ok) blob = await r.blob();
        } catch (err) { blob = null; }
        if (gen !== this.loadGen) return;
        if (!blob) { this.failed.add(i); this.loaded++; this.updateHud(); continue; }
        this.blobs[i] = blob;
        this.loaded++;
        if (Math.abs(i - this.frame) <= WINDOW) this.ensureWindow();
        if (this.loaded === this.n || this.loaded % 25 === 0) this.updateHud();
      }
    };
    for (let k = 0; k < 6; k++) worker();
    this.updateHud();
  }

  // ---------------------------------------------------------------- decoded frames
  // JPEG blobs for every frame stay in memory (compressed); a window of frames around the
  // playhead is decoded ahead with createImageBitmap, so drawing is a plain blit.
  dropBitmaps() {
    for (const bm of this.bitmaps.values()) if (bm.close) bm.close();
    this.bitmaps = new Map();
    this.decoding = new Set();
  }

  wanted() {
    const out = [];
    const push = (i) => { if (i >= 0 && i < this.n) out.push(i); };
    for (const P of this.panelFrames()) if (P.frame !== null) push(P.frame);
    push(this.frame);
    const lo = this.rangeLo(), hi = this.rangeHi();
    let i = this.frame, d = this.playing ? this.dir : 1;
    const ahead = this.playing ? WINDOW : 6;
    for (let k = 0; k < ahead && hi > lo; k++) {
      i += d;
      if (i > hi) { if (this.mode === "pingpong") { d = -1; i = Math.max(lo, hi - 1); } else i = lo; }
      if (i < lo) { if (this.mode === "pingpong") { d = 1; i = Math.min(hi, lo + 1); } else i = hi; }
      push(i);
    }
    if (!this.playing) {
      for (let k = 1; k <= 6; k++) push(this.frame - k);
      push(this.frame + 10); push(this.frame - 10); push(lo); push(hi);
    }
    return out;
  }

  ensureWindow() {
    if (!this.blobs || !this.n) return;
    const want = this.wanted();
    const keep = new Set(want);
    if (this.bitmaps.size > want.length + 8) {
      for (const [i, bm] of this.bitmaps) if (!keep.has(i)) { if (bm.close) bm.close(); this.bitmaps.delete(i); }
    }
    const gen = this.loadGen;
    for (const i of want) {
      if (this.decoding.size >= 4) break;
      if (this.bitmaps.has(i) || this.decoding.has(i) || !this.blobs[i]) continue;
      this.decoding.add(i);
      createImageBitmap(this.blobs[i]).then((bm) => {
        this.decoding.delete(i);
        if (gen !== this.loadGen) { if (bm.close) bm.close(); return; }
        this.bitmaps.set(i, bm);
        if (this.drawn.indexOf(i) < 0 && this.panels().some((P) => P.frame === i || P.kind !== "image")) this.draw();
        this.ensureWindow();
      }, () => { this.decoding.delete(i); });
    }
  }

  // ---------------------------------------------------------------- events to Python
  emit(type, payload) {
    const ev = Object.assign({ seq: ++this.seq, type, loop: this.loopId }, payload);
    this.outbox.push(ev);
    if (this.outbox.length > 40) this.outbox = this.outbox.slice(-40);
    if (this.setStateValue) this.setStateValue("log", { sid: this.sid, events: this.outbox.slice() });
    return ev.seq;
  }

  frameSettled() {
    clearTimeout(this.frameTimer);
    this.settling = true;  // a frame report is due (counted in pendingEvents)
    this.frameTimer = setTimeout(() => {
      this.settling = false;
      if (!this.playing && this.frame !== this.lastSentFrame) {
        this.lastSentFrame = this.frame;
        this.emit("frame", { frame: this.frame });
      }
    }, 350);
  }

  mark(which) {
    this.pause();
    this.emit("mark", { which, frame: this.frame });
  }

  // ---------------------------------------------------------------- transport
  rangeLo() { return this.a === null ? 0 : Math.min(this.a, this.b === null ? this.a : this.b); }
  rangeHi() { return this.b === null ? this.n - 1 : Math.max(this.b, this.a === null ? 0 : this.a); }
  frameDur(i) { return i + 1 < this.n ? this.times[i + 1] - this.times[i] : this.medianDt; }

  setA() { this.a = this.frame; if (this.b !== null && this.b < this.a) this.b = null; this.renderMarks(); this.updateHud(); }
  setB() { this.b = this.frame; if (this.a !== null && this.a > this.b) this.a = null; this.renderMarks(); this.updateHud(); }

  setSpeed(s) {
    this.speed = Math.min(2, Math.max(0.1, s));
    this.speedSel.value = String(this.speed);
    this.restartClock();
    this.updateHud();
  }

  seek(i, notify = true) {
    if (!this.n) return;
    i = Math.max(0, Math.min(this.n - 1, Math.round(i)));
    this.frame = i;
    this.mediaT = this.times[i];
    this.ensureWindow();
    this.draw();
    this.updateHud();
    if (notify) this.frameSettled();
  }

  step(k) {
    this.pause();
    this.seek(this.frame + k);
  }

  toggle() { this.playing ? this.pause() : this.play(); }

  play() {
    if (this.playing || this.n < 2) return;
    if (this.mode === "once" && this.frame >= this.rangeHi()) this.seek(this.rangeLo(), false);
    if (this.frame < this.rangeLo() || this.frame > this.rangeHi()) this.seek(this.rangeLo(), false);
    this.playing = true;
    this.dir = 1;
    const t0 = performance.now();
    this.stats = { displayed: 1, skipped: 0, t0, tLast: t0, ticks: 0, tTick: t0, playStartFrame: this.frame };
    this.restartClock();
    this.playBtn.textContent = "❙❙";
    const loop = (now) => {
      if (!this.playing) return;
      this.tick(now);
      this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
    this.updateHud();
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this.raf);
    this.playBtn.textContent = "▶";
    this.updateHud();
    this.frameSettled();
  }

  restartClock() {
    this.clockNow = null;
    this.mediaT = this.n ? this.times[this.frame] : 0;
  }

  frameAt(t, lo, hi) {
    // last frame in [lo, hi] whose start time <= t
    let a = lo, b = hi;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (this.times[m] <= t) a = m; else b = m - 1;
    }
    return a;
  }

  tick(now) {
    if (this.clockNow === null) { this.clockNow = now; return; }
    const dt = (now - this.clockNow) * this.speed;
    this.clockNow = now;
    const lo = this.rangeLo(), hi = this.rangeHi();
    const t0 = this.times[lo], t1 = this.times[hi] + this.frameDur(hi);
    const span = Math.max(1e-6, t1 - t0);
    this.stats.ticks += 1;
    this.stats.tTick = now;
    let t = this.mediaT + dt * this.dir;
    let wrapped = false;
    if (this.mode === "loop") {
      if (t >= t1) { t = t0 + ((t - t0) % span); wrapped = true; }
    } else if (this.mode === "pingpong") {
      if (this.dir > 0 && t >= t1) { t = t1 - (t - t1) - 1e-6; this.dir = -1; }
      if (this.dir < 0 && t < t0) { t = t0 + (t0 - t); this.dir = 1; }
      t = Math.min(Math.max(t, t0), t1 - 1e-6);
    } else if (t >= t1) {
      this.mediaT = this.times[hi];
      this.showFrame(hi, false);
      this.pause();
      return;
    }
    // In reverse (ping-pong) the frame shown at media time t is the one whose interval holds t.
    let idx = this.frameAt(t, lo, hi);
    const every = this.everyFrame();
    if (every) {
      // The display can show every frame at this rate: after a late tick show the next frame
      // and let the clock slip, rather than skipping frames a reviewer may need to see.
      if (this.mode === "loop") {
        const steps = wrapped ? (hi - this.frame) + (idx - lo) + 1 : idx - this.frame;
        if (steps > 1) {
          const next = this.frame >= hi ? lo : this.frame + 1;
          // Up to a few frames behind: show the next frame but keep the true clock, so the
          // following ticks catch up (the display runs a little faster than the loop).
          // Further behind, or across the loop's end: let the clock slip to the frame shown.
          if (wrapped || steps > 4) t = this.times[next];
          wrapped = next === lo && this.frame >= hi;
          idx = next;
        }
      } else {
        const d = idx - this.frame;
        if (Math.abs(d) > 1) {
          idx = this.frame + Math.sign(d);
          t = d > 0 ? this.times[idx] : this.times[idx] + this.frameDur(idx) - 1e-3;
        }
      }
    }
    if (idx !== this.frame && !this.bitmaps.has(idx) && !this.failed.has(idx)) {
      // not decoded yet: hold this frame (every-frame rates) or wait without drawing (fast rates)
      this.stats.stalls = (this.stats.stalls || 0) + 1;
      if (!every) this.mediaT = t;
      this.ensureWindow();
      return;
    }
    this.mediaT = t;
    this.showFrame(idx, wrapped, lo, hi);
  }

  everyFrame() {
    // ~55 Hz: below the usual 60 Hz display refresh with a margin
    return (this.speed * 1000) / this.medianDt <= 55;
  }

  showFrame(idx, wrapped, lo, hi) {
    if (idx === this.frame) return;
    let steps;
    if (wrapped) steps = (hi - this.frame) + (idx - lo) + 1;
    else steps = Math.abs(idx - this.frame);
    this.stats.displayed += 1;
    this.stats.skipped += Math.max(0, steps - 1);
    this.stats.tLast = performance.now();
    this.frame = idx;
    this.draw();
    this.updateHud();
    this.ensureWindow();
  }

  // ---------------------------------------------------------------- view geometry
  resize() {
    const cssW = Math.max(200, Math.floor(this.root.clientWidth || this.parent.clientWidth || 800));
    const panels = this.panelFrames();
    const cols = panels.length;
    const aspect = this.h / this.w || 0.75;
    const maxH = Math.max(240, Math.floor((window.innerHeight || 900) * (this.data.max_height_frac || 0.64)));
    const strip = PAIR_CAPTION_STRIP + PAIR_TITLE_STRIP;  // HUD lines below, frame line / titles above
    const cssH = Math.min(maxH, Math.max(200, Math.round((cssW / cols) * aspect) + strip));
    const dpr = window.devicePixelRatio || 1;
    if (this.cssW !== cssW || this.cssH !== cssH || this.dpr !== dpr) {
      this.cssW = cssW; this.cssH = cssH; this.dpr = dpr;
      this.canvas.style.width = cssW + "px";
      this.canvas.style.height = cssH + "px";
      this.canvas.width = Math.round(cssW * dpr);
      this.canvas.height = Math.round(cssH * dpr);
    }
    this.draw();
    this.updateHud();
  }

  panelFrames() {
    // [{frame, title, kind}] — kind: image | difference | overlay
    const d = this.data;
    if (d.view === "pair" && d.pair) {
      const [r, c] = d.pair;
      const out = [
        { frame: r, title: `Rest · frame ${r + 1} · ${(this.times[r] || 0).toFixed(1)} ms`, kind: "image", color: "#4fc3f7" },
        { frame: c, title: `Contraction · frame ${c + 1} · ${(this.times[c] || 0).toFixed(1)} ms`, kind: "image", color: "#ffb74d" },
      ];
      if (d.pair_mode === "difference") out.push({ frame: null, title: "Difference |rest − contraction|", kind: "difference" });
      if (d.pair_mode === "overlay") out.push({ frame: null, title: "Overlay: rest magenta, contraction green", kind: "overlay" });
      return out;
    }
    return [{ frame: null, title: "", kind: "image" }];
  }

  panels() {
    const list = this.panelFrames();
    const pw = this.cssW / list.length;
    // side by side, the image fits above a caption strip that holds the HUD lines (state, the
    // calibration badge), so they cover no image content (unless the user zooms into it)
    // the frame line (single) or the panel titles (side by side) sit in a strip above the image,
    // the HUD lines in one below it: no overlay covers the image data (logo, patient ID corners)
    const strip = PAIR_CAPTION_STRIP;
    const top = PAIR_TITLE_STRIP;
    return list.map((p, k) => {
      const x0 = k * pw, y0 = 0, w = pw, h = this.cssH;
      const fit = Math.min(w / this.w, (h - strip - top) / this.h);
      const s = fit * this.zoom;
      const ox = x0 + (w - this.w * s) / 2 + this.panX * s;
      const oy = y0 + top + (h - strip - top - this.h * s) / 2 + this.panY * s;
      return Object.assign({}, p, { x0, y0, w, h, s, ox, oy, frame: p.frame === null && p.kind === "image" ? this.frame : p.frame });
    });
  }

  toScreen(P, pt) { return [P.ox + (pt[0] + 0.5) * P.s, P.oy + (pt[1] + 0.5) * P.s]; }
  toImage(P, sx, sy) { return [(sx - P.ox) / P.s - 0.5, (sy - P.oy) / P.s - 0.5]; }

  panelAt(sx, sy) {
    return this.panels().find((P) => sx >= P.x0 && sx < P.x0 + P.w && sy >= P.y0 && sy < P.y0 + P.h) || null;
  }

  zoomBy(f, sx, sy) {
    const P0 = this.panels()[0];
    const P = (sx !== undefined && this.panelAt(sx, sy)) || P0;
    if (sx === undefined) { sx = P.x0 + P.w / 2; sy = P.y0 + P.h / 2; }
    const before = this.toImage(P, sx, sy);
    this.zoom = Math.min(40, Math.max(0.5, this.zoom * f));
    const P2 = this.panels().find((q) => q.x0 === P.x0) || P0;
    const after = this.toImage(P2, sx, sy);
    this.panX += after[0] - before[0];
    this.panY += after[1] - before[1];
    this.draw();
    this.updateHud();
  }

  fit() { this.zoom = 1; this.panX = this.panY = 0; this.draw(); this.updateHud(); }

  setWL(b, c) {
    this.brightness = b; this.contrast = c;
    this.bSlider.value = b; this.cSlider.value = c;
    this.draw();
  }

  setTool(t) {
    this.tool = t;
    this.anchor = null;
    for (const [k, b] of Object.entries(this.toolBtns)) b.classList.toggle("mp-on", k === t);
    this.canvas.style.cursor = t === "pan" ? "grab" : t === "wl" ? "ns-resize" : "crosshair";
    this.updateHud();
    this.draw();
  }

  // ---------------------------------------------------------------- pointer input
  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  calipersOn(frame) {
    const out = [];
    for (const c of this.data.calipers || []) {
      if (c.frame !== frame) continue;
      const mv = this.moves[c.id];
      out.push(mv ? Object.assign({}, c, { p1: mv.p1, p2: mv.p2, text: "…" }) : c);
    }
    return out;
  }

  onDown(e) {
    this.root.focus({ preventScroll: true });
    const [sx, sy] = this.local(e);
    const P = this.panelAt(sx, sy);
    if (!P) return;
    this.canvas.setPointerCapture(e.pointerId);
    const panning = this.tool === "pan" || e.shiftKey || e.button === 1 || e.button === 2;
    if (panning) { this.drag = { kind: "pan", sx, sy, panX: this.panX, panY: this.panY, P }; this.canvas.style.cursor = "grabbing"; return; }
    if (this.tool === "wl") { this.drag = { kind: "wl", sx, sy, b: this.brightness, c: this.contrast }; return; }
    if (P.kind !== "image") return;
    if (this.tool === "caliper" && !this.anchor) {
      for (const c of this.calipersOn(P.frame)) {
        for (const end of ["p1", "p2"]) {
          const [ex, ey] = this.toScreen(P, c[end]);
          if (Math.hypot(ex - sx, ey - sy) <= HIT_PX) {
            this.drag = { kind: "end", id: c.id, end, P, c: { p1: c.p1.slice(), p2: c.p2.slice() }, frame: P.frame, moved: false };
            return;
          }
        }
      }
    }
    this.drag = { kind: "click", sx, sy, P };
  }

  onMove(e) {
    const [sx, sy] = this.local(e);
    const dg = this.drag;
    if (dg && dg.kind === "pan") {
      this.panX = dg.panX + (sx - dg.sx) / dg.P.s;
      this.panY = dg.panY + (sy - dg.sy) / dg.P.s;
      this.draw();
      return;
    }
    if (dg && dg.kind === "wl") {
      const c = Math.min(3, Math.max(0.2, dg.c * Math.exp((sx - dg.sx) / 200)));
      const b = Math.min(3, Math.max(0.2, dg.b * Math.exp(-(sy - dg.sy) / 200)));
      this.setWL(b, c);
      return;
    }
    if (dg && dg.kind === "end") {
      dg.c[dg.end] = this.toImage(dg.P, sx, sy);
      dg.moved = true;
      this.draw();
      return;
    }
    const P = this.panelAt(sx, sy);
    this.hover = P && P.kind === "image" ? { P, p: this.toImage(P, sx, sy) } : null;
    if (this.anchor) this.draw();
    this.updateHint();
  }

  onUp(e) {
    const dg = this.drag;
    this.drag = null;
    if (this.tool === "pan") this.canvas.style.cursor = "grab";
    if (!dg) return;
    const [sx, sy] = this.local(e);
    if (dg.kind === "end") {
      if (dg.moved) {
        const seq = this.emit("caliper_move", { id: dg.id, frame: dg.frame, p1: round2(dg.c.p1), p2: round2(dg.c.p2) });
        this.moves[dg.id] = { p1: dg.c.p1, p2: dg.c.p2, seq };
      }
      this.draw();
      return;
    }
    if (dg.kind !== "click" || Math.hypot(sx - dg.sx, sy - dg.sy) > 4) return;
    const P = dg.P;
    const p = this.toImage(P, sx, sy);
    if (this.tool !== "caliper" && this.tool !== "calibrate") return;
    if (!this.anchor) {
      this.pause();
      this.anchor = { frame: P.frame, p, panelX: P.x0 };
    } else if (this.anchor.panelX !== P.x0) {
      this.anchor = { frame: P.frame, p, panelX: P.x0 };
    } else {
      const a = this.anchor;
      this.anchor = null;
      if (this.tool === "caliper") {
        const seq = this.emit("caliper_add", { frame: a.frame, p1: round2(a.p), p2: round2(p) });
        this.pending.push({ seq, frame: a.frame, p1: a.p, p2: p });
      } else {
        this.emit("calib_points", { frame: a.frame, p1: round2(a.p), p2: round2(p) });
        this.pendingCalib = { p1: a.p, p2: p };
      }
    }
    this.draw();
    this.updateHint();
  }

  onWheel(e) {
    e.preventDefault();
    e.stopPropagation();
    const [sx, sy] = this.local(e);
    this.zoomBy(Math.exp(-e.deltaY / 500), sx, sy);
  }

  onKey(e) {
    if (e.key === "Tab") return;
    const t = e.target;
    if (t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range"))) { e.stopPropagation(); return; }
    const k = e.key;
    const n = e.shiftKey ? 10 : 1;
    let handled = true;
    if (k === "ArrowRight" || k === "ArrowDown") this.step(n);
    else if (k === "ArrowLeft" || k === "ArrowUp") this.step(-n);
    else if (k === "Home") { this.pause(); this.seek(this.rangeLo()); }
    else if (k === "End") { this.pause(); this.seek(this.rangeHi()); }
    else if (k === " " || k === "Spacebar") this.toggle();
    else if (k === "?") this.toggleHelp();
    else if (k === "Escape") { this.anchor = null; this.toggleHelp(false); this.draw(); }
    else if (k === "+" || k === "=") this.zoomBy(1.25);
    else if (k === "-" || k === "_") this.zoomBy(1 / 1.25);
    else if (k === "f" || k === "F" || k === "0") this.fit();
    else if (k === "m" || k === "M") this.setTool("caliper");
    else if (k === "p" || k === "P") this.setTool("pan");
    else if (k === "w" || k === "W") this.setTool("wl");
    else if (k === "k" || k === "K") this.setTool("calibrate");
    else if (k === "r" || k === "R") this.mark("rest");
    else if (k === "c" || k === "C") this.mark("contraction");
    else if (k === "a" || k === "A") this.setA();
    else if (k === "b" || k === "B") this.setB();
    else if (k === "[") this.setSpeed(SPEEDS[Math.max(0, SPEEDS.indexOf(this.speed) - 1)] || 1);
    else if (k === "]") this.setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, SPEEDS.indexOf(this.speed) + 1)] || 1);
    else handled = false;
    e.stopPropagation(); // never let keys reach Streamlit's global shortcuts
    if (handled) e.preventDefault();
  }

  // ---------------------------------------------------------------- drawing
  draw() {
    const ctx = this.ctx;
    if (!ctx || !this.cssW) return;
    const dpr = this.dpr || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.cssW, this.cssH);
    const panels = this.panels();
    const need = [];
    for (const P of panels) {
      if (P.kind === "image") need.push(P.frame);
      else need.push(...(this.data.pair || []));
    }
    if (need.some((i) => !this.bitmaps.has(i)) && this.drawn.length && this.drawnLoop === this.loopId) {
      // keep the last picture until the new frame is decoded (a few ms); never flash black
      this.ensureWindow();
      return;
    }
    const filter = this.brightness !== 1 || this.contrast !== 1 ? `brightness(${this.brightness}) contrast(${this.contrast})` : "none";
    for (const P of panels) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(P.x0, P.y0, P.w, P.h);
      ctx.clip();
      ctx.imageSmoothingEnabled = P.s < 2;
      ctx.filter = filter;
      const pair = this.data.pair || [];
      if (P.kind === "image") {
        const img = this.bitmaps.get(P.frame);
        if (img) ctx.drawImage(img, P.ox, P.oy, this.w * P.s, this.h * P.s);
      } else {
        const A = this.bitmaps.get(pair[0]), B = this.bitmaps.get(pair[1]);
        if (A && B) {
          if (P.kind === "difference") {
            ctx.drawImage(A, P.ox, P.oy, this.w * P.s, this.h * P.s);
            ctx.globalCompositeOperation = "difference";
            ctx.drawImage(B, P.ox, P.oy, this.w * P.s, this.h * P.s);
            ctx.globalCompositeOperation = "source-over";
          } else {
            ctx.drawImage(this.overlayCanvas(pair[0], pair[1], A, B), P.ox, P.oy, this.w * P.s, this.h * P.s);
          }
        }
      }
      ctx.filter = "none";
      if (P.kind === "image") this.drawAnnotations(ctx, P);
      if (P.title) this.drawTitle(ctx, P);
      ctx.restore();
      if (P.x0 > 0) { ctx.fillStyle = "#333"; ctx.fillRect(P.x0 - 1, 0, 2, this.cssH); }
    }
    this.drawn = panels.map((P) => (P.kind === "image" && this.bitmaps.has(P.frame) ? P.frame : null));
    this.drawnLoop = this.loopId;
  }

  overlayCanvas(ia, ib, A, B) {
    const key = ia + ":" + ib;
    if (this.scratch.key === key) return this.scratch.canvas;
    const mk = (img, tint) => {
      const c = document.createElement("canvas");
      c.width = this.w; c.height = this.h;
      const x = c.getContext("2d");
      x.drawImage(img, 0, 0);
      x.globalCompositeOperation = "multiply";
      x.fillStyle = tint;
      x.fillRect(0, 0, this.w, this.h);
      return c;
    };
    const out = mk(A, "#ff00ff");
    const x = out.getContext("2d");
    x.globalCompositeOperation = "lighter";
    x.drawImage(mk(B, "#00ff00"), 0, 0);
    this.scratch = { key, canvas: out };
    return out;
  }

  drawTitle(ctx, P) {
    ctx.font = "700 14px system-ui, sans-serif";
    const w = ctx.measureText(P.title).width + 14;
    ctx.fillStyle = "rgba(0,0,0,0.8)";
    ctx.fillRect(P.x0 + 8, P.y0 + 4, w, 24);
    ctx.fillStyle = P.color || "#ddd";
    ctx.fillText(P.title, P.x0 + 15, P.y0 + 21);
  }

  drawAnnotations(ctx, P) {
    const d = this.data;
    this.labelBoxes = [];  // labels drawn on this panel so far: later ones move clear of them
    this.labelPanel = P;
    // analysis / extra shapes
    for (const sh of d.shapes || []) {
      if (sh.frame !== undefined && sh.frame !== null && sh.frame !== P.frame) continue;
      const pts = (sh.points || []).map((q) => this.toScreen(P, q));
      ctx.strokeStyle = ctx.fillStyle = sh.color || "#80deea";
      ctx.lineWidth = sh.width || 1.5;
      ctx.setLineDash(sh.dash ? [5, 4] : []);
      if (sh.kind === "point") {
        for (const [x, y] of pts) { ctx.beginPath(); ctx.arc(x, y, 3.5, 0, 2 * Math.PI); ctx.fill(); }
      } else if (pts.length > 1) {
        ctx.beginPath();
        ctx.moveTo(pts[0][0], pts[0][1]);
        for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
        if (sh.closed) ctx.closePath();
        ctx.stroke();
      }
      ctx.setLineDash([]);
      if (sh.label && pts.length) this.label(ctx, sh.label, pts[0][0] + 6, pts[0][1] - 6, sh.color || "#80deea");
    }
    // manual calibration points
    const cp = this.pendingCalib || d.calib_points;
    if (cp && cp.p1) this.drawSegment(ctx, P, cp.p1, cp.p2, "#ce93d8", "calibration " + (d.calib_text || ""), true);
    // measurements on this frame
    for (const c of this.calipersOn(P.frame)) {
      const color = c.color || (c.ok === false ? "#ffb74d" : "#ffeb3b");
      this.drawSegment(ctx, P, c.p1, c.p2, color, (c.label ? c.label + ": " : "") + (c.text || ""));
    }
    if (this.drag && this.drag.kind === "end" && this.drag.P.x0 === P.x0) {
      const dg = this.drag;
      this.drawSegment(ctx, P, dg.c.p1, dg.c.p2, "#ffffff", this.liveText(dg.c.p1, dg.c.p2));
    }
    for (const p of this.pending) if (p.frame === P.frame) this.drawSegment(ctx, P, p.p1, p.p2, "#ffffff", "…");
    if (this.anchor && this.anchor.panelX === P.x0) {
      const end = this.hover && this.hover.P.x0 === P.x0 ? this.hover.p : this.anchor.p;
      const col = this.tool === "calibrate" ? "#ce93d8" : "#ffffff";
      this.drawSegment(ctx, P, this.anchor.p, end, col, this.liveText(this.anchor.p, end), true);
    }
  }

  liveText(p1, p2) {
    const dx = p2[0] - p1[0], dy = p2[1] - p1[1];
    const px = Math.hypot(dx, dy);
    const cal = this.data.cal || {};
    const inR = (r, p) => p[0] >= r.x0 - 0.5 && p[0] <= r.x1 + 0.5 && p[1] >= r.y0 - 0.5 && p[1] <= r.y1 + 0.5;
    if (cal.regions && cal.regions.length) {
      const pick = (p) => cal.regions.filter((r) => inR(r, p)).sort((a, b) => a.area - b.area)[0];
      const r1 = pick(p1), r2 = pick(p2);
      if (r1 && r2 && r1.index !== r2.index) return px.toFixed(1) + " px — across regions";
      if (r1 && r2 && r1.mx && r1.my) return Math.hypot(dx * r1.mx, dy * r1.my).toFixed(2) + " mm";
      return px.toFixed(1) + " px (uncalibrated)";
    }
    if (cal.mx && cal.my) return Math.hypot(dx * cal.mx, dy * cal.my).toFixed(2) + " mm";
    return px.toFixed(1) + " px (uncalibrated)";
  }

  drawSegment(ctx, P, p1, p2, color, text, dashed) {
    const [x1, y1] = this.toScreen(P, p1);
    const [x2, y2] = this.toScreen(P, p2);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = color;
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
    ctx.setLineDash([]);
    for (const [x, y] of [[x1, y1], [x2, y2]]) {
      ctx.beginPath();
      ctx.moveTo(x - 6, y); ctx.lineTo(x + 6, y);
      ctx.moveTo(x, y - 6); ctx.lineTo(x, y + 6);
      ctx.stroke();
    }
    if (text) this.label(ctx, text, (x1 + x2) / 2 + 8, (y1 + y2) / 2 - 8, color);
  }

  label(ctx, text, x, y, color) {
    ctx.font = "600 13px ui-monospace, Menlo, Consolas, monospace";
    const w = ctx.measureText(text).width;
    const P = this.labelPanel;
    if (P) x = Math.max(P.x0 + 4, Math.min(x, P.x0 + P.w - w - 6));  // never cut off at the panel edge
    const boxes = this.labelBoxes || [];
    const hits = (yy) => boxes.some((b) => x - 3 < b[2] && x + w + 3 > b[0] && yy - 13 < b[3] && yy + 5 > b[1]);
    const y0 = y;  // move clear of labels already drawn: above first, then below, farther each time
    for (const dy of [-20, 20, -40, 40, 60]) { if (!hits(y)) break; y = y0 + dy; }
    if (P) y = Math.max(P.y0 + 16, Math.min(y, P.y0 + P.h - 6));
    boxes.push([x - 3, y - 13, x + w + 3, y + 5]);
    ctx.fillStyle = "rgba(0,0,0,0.7)";
    ctx.fillRect(x - 3, y - 13, w + 6, 18);
    ctx.fillStyle = color;
    ctx.fillText(text, x, y);
  }

  renderMarks() {
    const m = this.marksLayer;
    m.textContent = "";
    if (!this.n) return;
    const pos = (i) => (this.n > 1 ? (i / (this.n - 1)) * 100 : 0) + "%";
    if (this.a !== null || this.b !== null) {
      const r = el("div", "mp-ab", m);
      r.style.left = pos(this.rangeLo());
      r.style.width = `calc(${pos(this.rangeHi())} - ${pos(this.rangeLo())})`;
    }
    const marks = this.data.marks || {};
    for (const [which, cls, t] of [["rest", "mp-tick-rest", "R"], ["contraction", "mp-tick-con", "C"]]) {
      if (typeof marks[which] === "number") {
        const tick = el("div", "mp-tick " + cls, m, t);
        tick.style.left = pos(marks[which]);
        tick.title = which + " frame " + (marks[which] + 1);
      }
    }
    for (const c of this.data.calipers || []) {
      const tick = el("div", "mp-tick mp-tick-cal", m);
      tick.style.left = pos(c.frame);
    }
  }

  updateHint() {
    const hints = {
      caliper: this.anchor ? "click the second point (Esc cancels)" : "caliper: click two points · drag an end to adjust",
      pan: "drag to pan · wheel to zoom",
      wl: "drag ↔ contrast · ↕ brightness",
      calibrate: this.anchor ? "click the second point on the scale" : "calibrate: click two points a known distance apart",
    };
    let text = hints[this.tool] || "";
    if (this.hover) {
      const [x, y] = this.hover.p;
      text = `x ${x.toFixed(1)}  y ${y.toFixed(1)} px · ` + text;
    }
    this.hudHint.textContent = text + " · ? keys";
  }

  updateHud() {
    if (!this.n) { this.hudFrame.textContent = "no loop"; return; }
    const t = this.times[this.frame] || 0;
    const marks = this.data.marks || {};
    let tag = "";
    if (marks.rest === this.frame) tag += "  REST";
    if (marks.contraction === this.frame) tag += "  CONTRACTION";
    const pairView = this.data.view === "pair" && this.data.pair;
    if (this.failed && this.failed.has(this.frame)) tag += "  (not decodable)";
    this.hudFrame.textContent = `Frame ${this.frame + 1} / ${this.n}   ${t.toFixed(1)} ms${tag}`;
    this.hudFrame.style.display = pairView ? "none" : "";
    this.counter.textContent = `${this.frame + 1} / ${this.n} · ${t.toFixed(1)} ms`;
    this.slider.value = this.frame;
    const ab = this.a !== null || this.b !== null ? `  A–B ${this.rangeLo() + 1}–${this.rangeHi() + 1}` : "";
    const load = (this.loaded < this.n ? `  loading ${this.loaded}/${this.n}` : "")
      + (this.failed && this.failed.size ? `  ${this.failed.size} frame(s) could not be decoded` : "");
    this.hudInfo.textContent = `${this.playing ? "playing" : "paused"} ${this.speed}× ${this.mode}${ab} · zoom ${Math.round(this.zoom * 100)}%${load}`;
    this.zoomLabel.textContent = Math.round(this.zoom * 100) + "%";
    this.updateHint();
  }

  // ---------------------------------------------------------------- test / benchmark hooks
  api() {
    const p = this;
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
      panelFrames: () => p.panels().map((P) => ({ frame: P.frame, kind: P.kind, title: P.title })),
      pixel: (panel, pt) => {
        const P = p.panels()[panel];
        const [x, y] = p.toScreen(P, pt);
        const d = p.ctx.getImageData(Math.round(x * p.dpr), Math.round(y * p.dpr), 1, 1).data;
        return [d[0], d[1], d[2]];
      },
    };
  }
}

function round2(p) { return [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100]; }

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let p = PLAYERS.get(parentElement);
  if (!p) {
    p = new Player(parentElement);
    PLAYERS.set(parentElement, p);
  }
  p.update(data, setStateValue);
  return () => { p.destroy(); PLAYERS.delete(parentElement); };
}
