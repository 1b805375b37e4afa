// msus cine player · input: keys (page-wide while no text field has focus), pointer tools
// (caliper, pan, window/level, calibrate), wheel zoom and fit.
const HIT_PX = 9;
const WHEEL_STEP = 1.1; // zoom factor per wheel notch (keys and buttons: 1.25)
const CALIPER_MARGIN = 0.35; // zoom to calipers: room around their box, as a share of its size
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

class PlayerInput {
  zoomBy(f, sx, sy) {
    const P0 = this.panels()[0];
    const P = (sx !== undefined && this.panelAt(sx, sy)) || P0;
    if (sx === undefined) { sx = P.x0 + P.w / 2; sy = P.y0 + P.h / 2; }
    const before = this.toImage(P, sx, sy);
    this.zoom = Math.min(40, Math.max(0.5, this.zoom * f));
    this.hintNote = null;
    const P2 = this.panels().find((q) => q.x0 === P.x0) || P0;
    const after = this.toImage(P2, sx, sy);
    this.panX += after[0] - before[0];
    this.panY += after[1] - before[1];
    this.draw();
    this.updateHud();
  }

  fit() { this.zoom = 1; this.panX = this.panY = 0; this.hintNote = null; this.draw(); this.updateHud(); }

  zoomToCalipers() {
    // Fit the view to the calipers on the frames shown (the marked pair side by side), with a margin.
    const P = this.panels()[0];
    const frames = new Set(this.panels().filter((q) => q.kind === "image").map((q) => q.frame));
    const pts = [];
    for (const f of frames) for (const c of this.calipersOn(f)) pts.push(c.p1, c.p2);
    if (!pts.length || !P) { this.hintNote = "no caliper on this frame to zoom to"; this.updateHint(); return false; }
    const xs = pts.map((q) => q[0]), ys = pts.map((q) => q[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const bw = Math.max(16, (x1 - x0) * (1 + 2 * CALIPER_MARGIN)), bh = Math.max(16, (y1 - y0) * (1 + 2 * CALIPER_MARGIN));
    const fitS = P.s / this.zoom;  // the panel's scale at zoom 1
    const availW = P.w, availH = P.h - PAIR_CAPTION_STRIP - PAIR_TITLE_STRIP;
    this.zoom = Math.min(40, Math.max(1, Math.min(availW / (bw * fitS), availH / (bh * fitS))));
    // centre the box: image point (cx, cy) at the middle of the panel's image area
    this.panX = this.w / 2 - (x0 + x1) / 2 - 0.5;
    this.panY = this.h / 2 - (y0 + y1) / 2 - 0.5;
    this.hintNote = null;
    this.draw();
    this.updateHud();
    return true;
  }

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
    // One mouse notch (≈100 px, or 3 lines) is one 10 % step whatever the device reports; a
    // trackpad's small deltas zoom in proportion, never more than one step per event.
    const px = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 800 : 1);
    const notches = Math.max(-1, Math.min(1, px / 100));
    this.zoomBy(Math.pow(WHEEL_STEP, -notches), sx, sy);
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
    else if (k === "z" || k === "Z") this.zoomToCalipers();
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
}

function round2(p) { return [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100]; }
