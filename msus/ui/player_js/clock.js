// msus cine player · clock: transport (seek, step, A–B range, speed) and playback at the loop's
// own frame times on requestAnimationFrame (every frame shown at rates the display can show).
class PlayerClock {
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
    if (this.data.view === "pair") { this.ensureWindow(); this.draw(); }  // the live panel appears
    this.updateHud();
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this.raf);
    this.playBtn.textContent = "▶";
    if (this.data.view === "pair") this.draw();  // the live panel goes: the marked pair as it was
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
}
