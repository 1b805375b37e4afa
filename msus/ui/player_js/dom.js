// msus cine player · dom: the player's elements (canvas, HUD, transport and tool bars, help).
// Part of the player (see main.js for how the parts are put together): plain top-level
// declarations, no imports; msus/ui/player.py joins the parts in order into one module.
const SPEEDS = [0.1, 0.25, 0.5, 1, 1.5, 2];
const SHORTCUTS = [
  ["Space", "play / pause"], ["← → ↑ ↓", "one frame back / forward (Shift: 10)"], ["Home  End", "first / last frame"],
  ["R  C", "mark rest / contraction"], ["A  B", "set the A–B range"], ["[  ]", "slower / faster"],
  ["M  P  W  K", "caliper · pan · window/level · calibrate"], ["+  −  F", "zoom in · out · fit (wheel: 10 % a notch)"], ["Z", "zoom to the calipers on this frame"],
  ["Esc", "cancel a half-drawn caliper · close this help"], ["?", "show / hide this help"],
];
// Extensions run on every new player: ext(player) may return a cleanup function (see testapi.js).
const EXTENSIONS = [];

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

class PlayerDom {
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

    const tl = el("div", "mp-timeline mp-transport", root);
    this.marksLayer = el("div", "mp-marks", tl);
    this.slider = el("input", "mp-slider", tl);
    this.slider.type = "range";
    this.slider.min = 0;
    this.slider.step = 1;
    this.slider.setAttribute("aria-label", "frame");
    this.slider.addEventListener("input", () => { this.pause(); this.seek(+this.slider.value); });

    const bar = el("div", "mp-bar", root);
    const g1 = el("div", "mp-group mp-transport", bar);
    button(g1, "|◀", "First frame (Home)", () => { this.pause(); this.seek(this.rangeLo()); });
    button(g1, "−10", "Back 10 frames (Shift+←)", () => this.step(-10));
    button(g1, "◀", "Previous frame (← or ↑)", () => this.step(-1));
    this.playBtn = button(g1, "▶", "Play / pause (Space)", () => this.toggle(), "mp-play");
    button(g1, "▶", "Next frame (→ or ↓)", () => this.step(1)).classList.add("mp-next");
    button(g1, "+10", "Forward 10 frames (Shift+→)", () => this.step(10));
    button(g1, "▶|", "Last frame (End)", () => { this.pause(); this.seek(this.rangeHi()); });
    this.counter = el("span", "mp-counter", g1);

    const g2 = el("div", "mp-group mp-transport", bar);
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
    const g3 = el("div", "mp-group mp-transport", bar2);
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
    button(g5, "⤢ Calipers", "Zoom to the calipers on this frame (Z)", () => this.zoomToCalipers(), "mp-zoom-cal");
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

  showTransport(on) {
    // A still (one frame: an image, the teaching page's static step) has nothing to play, step or
    // mark: the timeline, transport, A–B and Rest/Contraction controls are hidden.
    for (const g of this.root.querySelectorAll(".mp-transport")) g.style.display = on ? "" : "none";
  }

  toggleHelp(show) {
    const on = show === undefined ? this.help.style.display === "none" : show;
    this.help.style.display = on ? "" : "none";
  }
}
