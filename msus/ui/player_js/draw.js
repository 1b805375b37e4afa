// msus cine player · draw: the panels' geometry (single, side by side, difference, overlay) and
// drawing the frames, titles, calipers and overlay shapes on the canvas.
const PAIR_CAPTION_STRIP = 36; // px under side-by-side panels for the HUD lines (see panels())
const PAIR_TITLE_STRIP = 32; // px above side-by-side panels for their titles: no title covers the image top
const TITLE_BAR_BOTTOM = 28; // a panel title's bar ends this far below the panel top (inside the strip)

class PlayerDraw {
  resize() {
    const cssW = Math.max(200, Math.floor(this.root.clientWidth || this.parent.clientWidth || 800));
    const cols = this.panelFrames().filter((P) => P.kind !== "live").length;  // the live panel takes no height of its own
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
    // [{frame, title, kind}] — kind: image | difference | overlay | live
    // Side by side, the marked frames stay put; while the loop plays, a live panel beside them
    // shows the playing frame (it goes when playback pauses, and the pair is as it was).
    const d = this.data;
    if (d.view === "pair" && d.pair) {
      const [r, c] = d.pair;
      const ms = (i) => `${(this.times[i] || 0).toFixed(1)} ms`;
      const out = [
        { frame: r, title: `Rest · frame ${r + 1} · ${ms(r)}`, kind: "image", color: "#4fc3f7" },
        { frame: c, title: `Contraction · frame ${c + 1} · ${ms(c)}`, kind: "image", color: "#ffb74d" },
      ];
      if (d.pair_mode === "difference") out.push({ frame: null, title: "Difference |rest − contraction|", kind: "difference" });
      if (d.pair_mode === "overlay") out.push({ frame: null, title: "Overlay: rest magenta, contraction green", kind: "overlay" });
      if (this.playing) out.push({ frame: this.frame, title: `▶ Playing · frame ${this.frame + 1} · ${ms(this.frame)}`, kind: "live", color: "#a5d6a7" });
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
      if (P.kind === "image" || P.kind === "live") need.push(P.frame);
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
      if (P.kind === "image" || P.kind === "live") {
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
      if (P.kind === "image" || P.kind === "live") this.drawAnnotations(ctx, P);
      if (P.title) this.drawTitle(ctx, P);
      ctx.restore();
      if (P.x0 > 0) { ctx.fillStyle = "#333"; ctx.fillRect(P.x0 - 1, 0, 2, this.cssH); }
    }
    this.drawn = panels.map((P) => ((P.kind === "image" || P.kind === "live") && this.bitmaps.has(P.frame) ? P.frame : null));
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
    ctx.fillRect(P.x0 + 8, P.y0 + 4, w, TITLE_BAR_BOTTOM - 4);
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
    // A preview while drawing. The length kept, in mm or px, is Python's (Calibration.measure: the
    // region under each end, lengths across regions refused); the player is given one scale only
    // when it holds over the whole image (data.cal, from msus.ui.player.calibration_json), else it
    // shows px until Python's measurement arrives.
    const px = Math.hypot(p2[0] - p1[0], p2[1] - p1[1]);
    const cal = this.data.cal || {};
    if (cal.mx && cal.my) return Math.hypot((p2[0] - p1[0]) * cal.mx, (p2[1] - p1[1]) * cal.my).toFixed(2) + " mm";
    return px.toFixed(1) + " px" + (this.data.calibrated ? " · mm when placed" : " (uncalibrated)");
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
}
