// msus cine player · frames: fetching a loop's JPEG frames and the decode window around the
// playhead. JPEG blobs for every frame stay in memory (compressed); a window of frames around the
// playhead is decoded ahead with createImageBitmap, so drawing is a plain blit.
const WINDOW = 30; // frames decoded ahead of the playhead (ImageBitmaps, decoded off the main thread)

class PlayerFrames {
  loadFrames(base) {
    // Current frame first, then the rest in order, a few requests at a time.
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
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
  }

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
}
