// msus cine player · hud: the frame line, state line, calibration badge, timeline marks and hints.
class PlayerHud {
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
    if (this.hintNote) text = this.hintNote + " · " + text;
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
    this.hudFrame.style.display = pairView || this.n < 2 ? "none" : "";  // a still has no frame line
    this.counter.textContent = `${this.frame + 1} / ${this.n} · ${t.toFixed(1)} ms`;
    this.slider.value = this.frame;
    const ab = this.a !== null || this.b !== null ? `  A–B ${this.rangeLo() + 1}–${this.rangeHi() + 1}` : "";
    const load = (this.loaded < this.n ? `  loading ${this.loaded}/${this.n}` : "")
      + (this.failed && this.failed.size ? `  ${this.failed.size} frame(s) could not be decoded` : "");
    const state = this.n < 2 ? "still" : `${this.playing ? "playing" : "paused"} ${this.speed}× ${this.mode}${ab}`;  // a still does not play
    this.hudInfo.textContent = `${state} · zoom ${Math.round(this.zoom * 100)}%${load}`;
    this.zoomLabel.textContent = Math.round(this.zoom * 100) + "%";
    this.updateHint();
  }
}
