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
//
// The player is one class, Player, whose methods live in a few parts, each owning one concern:
//   dom.js     the elements (canvas, HUD boxes, bars, help overlay)     class PlayerDom
//   frames.js  fetching the JPEG frames, the decode window              class PlayerFrames
//   clock.js   transport and playback at the loop's own timing          class PlayerClock
//   input.js   keys (page-wide), pointer tools, wheel zoom, fit         class PlayerInput
//   draw.js    panel geometry and drawing on the canvas                 class PlayerDraw
//   hud.js     frame/state lines, badge, timeline marks, hints          class PlayerHud
//   main.js    this file: state, data from Python, events to Python, the component entry
//   testapi.js window.__msusPlayer for tests (joined in only with MSUS_PLAYER_TEST_API=1)
// No build step: msus/ui/player.py joins the files in this order (player.JS_PARTS) into the one
// module Streamlit loads; they share its top level (plain declarations, no imports).
const PLAYERS = new WeakMap();

/** Copy the methods of part classes onto Player.prototype (each part owns one concern). */
function mixin(target, ...parts) {
  for (const part of parts) {
    for (const name of Object.getOwnPropertyNames(part.prototype)) {
      if (name === "constructor") continue;
      if (Object.prototype.hasOwnProperty.call(target.prototype, name)) throw new Error("player: " + name + " defined twice");
      Object.defineProperty(target.prototype, name, Object.getOwnPropertyDescriptor(part.prototype, name));
    }
  }
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
    this.cleanups = EXTENSIONS.map((ext) => ext(this)).filter((f) => typeof f === "function");
    // Keys work as soon as the viewer opens (Space plays), unless the user is typing elsewhere.
    setTimeout(() => {
      const a = document.activeElement;
      if (!a || a === document.body) this.root.focus({ preventScroll: true });
    }, 0);
  }

  // ---------------------------------------------------------------- data from Python
  destroy() {
    this.playing = false;
    this.ro && this.ro.disconnect();
    clearTimeout(this.frameTimer);
    this.settling = false;
    for (const f of this.cleanups || []) f();
    if (ACTIVE === this) ACTIVE = null;
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
      if (d.command.play) this.play();
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
    this.showTransport(this.n > 1);
    this.hintNote = null;
    this.frame = Math.min(Math.max(0, d.start_frame || 0), Math.max(0, this.n - 1));
    this.lastSentFrame = this.frame;
    this.scratch = {};
    this.dropBitmaps();
    this.blobs = new Array(this.n);
    this.failed = new Set();
    this.loaded = 0;
    this.loadFrames(d.url || "");
    this.updateHud();
  }

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
    if (this.n < 2) return;  // a still has no rest or contraction
    this.pause();
    this.emit("mark", { which, frame: this.frame });
  }
}

mixin(Player, PlayerDom, PlayerFrames, PlayerClock, PlayerInput, PlayerDraw, PlayerHud);

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
