"""An independent second phantom simulator ("foreign" loops) to test that the tear analysis
generalises beyond :mod:`msus.synth` (deliberately NOT imported here; a different model and look).

Model
-----
* Tissue is drawn once in a *reference* configuration (the rest pose, with a margin) as an
  echogenicity map times a speckle texture; every frame samples it through an inverse
  deformation map (``cv2.remap``), so speckle moves with the tissue.
* Speckle: envelope of complex Gaussian noise filtered by an anisotropic Gaussian PSF (lateral
  wider than axial), optionally multiplied by Gamma texture (K-distributed intensity), log
  compressed with a random dynamic range (40–70 dB) and gain (darker or brighter screens).
* Layers along a muscle axis tilted by up to ±15°: skin, subcutaneous fat with septa, a
  superficial fascia (thin or thick, maybe curved), the muscle (no fascicles, straight or wavy
  fascicles; own echo level), a deep fascia, a deeper muscle and maybe a bone line.
* Tears: full-thickness with a jagged and/or oblique tear plane whose stumps retract with the
  contraction profile, or partial at the superficial or deep side (tapered tip) whose gap only
  follows the (small) uniform shortening.  The gap is anechoic or echogenic with clots.
* Contraction profiles: slow ramp, fast twitch, hold, starting partly contracted, two
  contractions; plus slow probe drift.
* The image is embedded in a scanner-like screen (black margins, a depth scale with ticks,
  burned-in text, a small logo); the calibrated DICOM-like region covers only the image.

Ground truth follows docs/architecture.md ("Words we use"): the gap is the distance along the muscle's long axis between the
stump ends averaged over the central half (25–75 %) of the torn depth (fascia to fascia for a
full tear, the defect's depth extent for a partial one); the thickness fraction; the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from msus.calibration import Calibration, Region

PROFILES = ("ramp", "twitch", "hold", "preloaded", "double")
CANVASES = ((480, 640), (600, 800), (576, 720), (768, 1024))


@dataclass(frozen=True)
class ForeignLoop:
    """A simulated screen loop and its ground truth (all gaps along the muscle axis, mm)."""

    frames: np.ndarray  # N×H×W×3 uint8
    fps: float
    calibration: Calibration
    region: tuple[int, int, int, int]
    tear: str  # full / partial / none
    classification: str
    thickness_fraction: float
    gap_mm: np.ndarray  # per frame (NaN when no tear)
    activation: np.ndarray  # per frame 0..1
    rest_frame: int
    contraction_frame: int
    params: dict = field(default_factory=dict)


def _profile(kind: str, n: int, rng) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    s0 = rng.uniform(0.15, 0.3)
    if kind == "ramp":  # slow ramp to a short hold
        a = np.clip((t - s0) / 0.55, 0, 1)
        a = 0.5 - 0.5 * np.cos(np.pi * a)
    elif kind == "twitch":  # fast up and down
        c, w = rng.uniform(0.4, 0.6), rng.uniform(0.06, 0.12)
        a = np.exp(-0.5 * ((t - c) / w) ** 2)
    elif kind == "hold":
        a = np.clip((t - s0) / 0.15, 0, 1) * np.clip((0.85 - t) / 0.1 + 1, 0, 1)
        a = np.clip(a, 0, 1)
    elif kind == "preloaded":  # starts partly contracted, relaxes, contracts fully
        a = 0.35 * np.clip(1 - t / 0.2, 0, 1) + np.clip((t - 0.45) / 0.25, 0, 1)
        a = np.clip(a, 0, 1)
    else:  # two contractions, the second stronger
        a = 0.7 * np.exp(-0.5 * ((t - 0.3) / 0.07) ** 2) + np.exp(-0.5 * ((t - 0.72) / 0.08) ** 2)
        a = np.clip(a, 0, 1)
    return a.astype(float)


def _speckle(shape, rng, sig_lat, sig_ax, gamma_k):
    n = rng.standard_normal(shape).astype(np.float32) + 1j * rng.standard_normal(shape).astype(np.float32)
    re = cv2.GaussianBlur(n.real.astype(np.float32), (0, 0), sigmaX=sig_lat, sigmaY=sig_ax)
    im = cv2.GaussianBlur(n.imag.astype(np.float32), (0, 0), sigmaX=sig_lat, sigmaY=sig_ax)
    inten = re * re + im * im
    inten /= float(inten.mean())
    if gamma_k:
        tex = rng.gamma(gamma_k, 1.0 / gamma_k, shape).astype(np.float32)
        inten *= cv2.GaussianBlur(tex, (0, 0), 2.0)
    return inten


def _smooth_noise(n, rng, scale, amp):
    """A smooth random 1-D function sampled at n points (amplitude ``amp``)."""
    k = max(3, int(n / max(scale, 1)) + 3)
    knots = rng.uniform(-1, 1, k)
    x = np.linspace(0, k - 1, n)
    return amp * np.interp(x, np.arange(k), knots)


def simulate_foreign(seed: int, tear: str | None = None, *, small: bool = False,
                     haematoma: float | None = None) -> ForeignLoop:
    """One foreign loop from ``seed`` (``tear``: full/partial/none, else from the seed).

    ``haematoma``: when given (0 < a ≤ 1), the defect is filled with a near-isoechoic clot whose
    scatter amplitude is ``a`` times the muscle's between its fibres (echo ∝ amplitude², uniform
    speckle, no floating clots); None (default) keeps the anechoic / echogenic-with-clots gap.
    """
    rng = np.random.default_rng(seed)
    tear = tear or ("full", "partial", "none")[seed % 3]
    H, W = CANVASES[rng.integers(len(CANVASES))] if not small else (360, 480)
    # calibrated image region inside the screen
    rw = int(W * rng.uniform(0.6, 0.78))
    rh = int(H * rng.uniform(0.7, 0.85))
    ox = int(rng.uniform(0.05, 0.95) * (W - rw - 60)) + 10
    oy = int(rng.uniform(0.3, 0.9) * (H - rh - 8))
    depth_mm = float(rng.uniform(32.0, 55.0))
    mmpp = depth_mm / rh
    n_frames = int(rng.integers(20, 121)) if not small else int(rng.integers(20, 36))
    fps = float(rng.choice([15.0, 20.0, 25.0, 30.0, 50.0, 60.0]))
    # ---- anatomy (mm; v = depth along the muscle's normal, u = along its axis)
    skin = 0.6
    fat = float(rng.uniform(2.0, 11.0))
    thick = float(rng.uniform(11.0, min(24.0, depth_mm - fat - 8.0)))
    tilt = float(np.deg2rad(rng.uniform(-15.0, 15.0)))
    curv = float(rng.uniform(-1.0, 1.0)) * 0.004  # mm^-1 (fascia bows by ≲ 0.4 mm per 10 mm²)
    fascia_w = float(rng.uniform(0.35, 1.4))
    fascia_lvl = float(rng.uniform(1.2, 3.0))
    muscle_lvl = float(rng.uniform(0.12, 0.35))
    fat_lvl = float(rng.uniform(0.05, 0.2))
    fasc_kind = rng.choice(["none", "straight", "wavy"])
    fasc_angle = float(np.deg2rad(rng.uniform(8.0, 28.0))) * rng.choice([-1, 1])
    fasc_amp = float(rng.uniform(0.3, 0.8))
    dr_db = float(rng.uniform(40.0, 70.0))
    gain_db = float(rng.uniform(-8.0, 6.0))
    sig_lat, sig_ax = float(rng.uniform(1.2, 3.0)), float(rng.uniform(0.6, 1.3))
    gamma_k = float(rng.choice([0.0, 1.5, 4.0]))
    # tear
    g0 = float(rng.uniform(3.0, 10.0))
    retract = float(rng.uniform(2.5, 6.0)) if tear == "full" else 0.0
    shorten = float(rng.uniform(0.02, 0.06))  # uniform shortening at full activation
    slant = float(rng.uniform(-0.5, 0.5))  # oblique plane: du/dv
    jag = float(rng.uniform(0.2, 0.9))
    frac = float(rng.uniform(0.35, 0.7))
    side = str(rng.choice(["superficial", "deep"]))
    anechoic = bool(rng.random() < 0.5)
    profile = str(rng.choice(PROFILES))
    act = _profile(profile, n_frames, rng)
    # probe drift (px): slow
    drift = np.stack([_smooth_noise(n_frames, rng, n_frames / 2, rng.uniform(0, 4)),
                      _smooth_noise(n_frames, rng, n_frames / 2, rng.uniform(0, 2))], 1)

    # ---- reference image (px grid with margin), in mm coordinates
    M = 40
    hh, ww = rh + 2 * M, rw + 2 * M
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    ymm = (yy - M) * mmpp
    xmm = (xx - M - rw / 2) * mmpp
    ct, st = np.cos(tilt), np.sin(tilt)
    # muscle frame: centre of the muscle at depth skin+fat+thick/2 under the image centre
    vc = skin + fat + thick / 2
    u = xmm * ct + (ymm - vc) * st
    v = -xmm * st + (ymm - vc) * ct  # 0 at the muscle's centre line, + deeper
    bow = curv * u * u
    vs = -thick / 2 + bow  # superficial fascia centre
    vd = thick / 2 + bow * 0.6
    uc = float(rng.uniform(-0.12, 0.12)) * rw * mmpp
    echo = np.full((hh, ww), fat_lvl, np.float32)
    # skin
    echo[ymm < skin] = 1.5
    # fat septa (thin oblique bright lines)
    fat_zone = (ymm >= skin) & (v < vs - fascia_w)
    sept = np.cos(2 * np.pi * (xmm * 0.12 + ymm * 0.5 + _smooth_noise(ww, rng, 60, 1.0)[None, :]))
    echo = np.where(fat_zone & (sept > 0.93), 0.7, echo)
    # muscle
    in_m = (v > vs) & (v < vd)
    mus = np.full((hh, ww), muscle_lvl, np.float32)
    if fasc_kind != "none":
        w = fasc_amp * np.sin(2 * np.pi * u / 9.0) if fasc_kind == "wavy" else 0.0
        ph = (u * np.sin(fasc_angle) + v * np.cos(fasc_angle) + w) / 1.6
        mus = mus * (1.0 + 1.6 * np.clip(np.cos(2 * np.pi * ph), 0.6, 1) - 0.6 * 1.6)
    echo = np.where(in_m, mus, echo)
    # deeper muscle and maybe bone
    deep_lvl = float(rng.uniform(0.1, 0.3))
    echo = np.where(v >= vd, deep_lvl, echo)
    if rng.random() < 0.5:
        vb = vd + float(rng.uniform(6.0, 12.0))
        echo = np.where((v >= vb) & (v < vb + 1.0), 2.5, echo)
        echo = np.where(v >= vb + 1.0, 0.02, echo)
    # fasciae
    for vf, wmul in ((vs, 1.0), (vd, float(rng.uniform(0.7, 1.4)))):
        echo = np.maximum(echo, fascia_lvl * np.exp(-0.5 * ((v - vf) / (fascia_w * wmul / 2.3)) ** 2))
    # ---- tear in the reference (rest) pose
    vv = np.linspace(-thick / 2, thick / 2, 200)
    jl = _smooth_noise(200, rng, 25, jag)
    jr = _smooth_noise(200, rng, 25, jag)

    def ends(vq, gap):
        """Left and right stump ends (u, mm) at depth vq for a base gap."""
        sl = slant * vq
        return (uc - gap / 2 + np.interp(vq, vv, jl) + sl, uc + gap / 2 + np.interp(vq, vv, jr) + sl)

    if tear == "partial":
        ext = frac * thick
        if side == "superficial":
            v_top, v_bot = -thick / 2, -thick / 2 + ext
        else:
            v_top, v_bot = thick / 2 - ext, thick / 2
        tip = v_bot if side == "superficial" else v_top

        def width_scale(vq):
            d = np.abs(vq - tip) / (0.25 * ext)  # taper over the last quarter towards the tip
            return np.clip(d, 0.0, 1.0) ** 0.5

        vrel = v - bow  # tear depth relative to the (bowed) fascia
        L, R = ends(vrel, g0 * 1.0)
        mid = (L + R) / 2
        half = (R - L) / 2 * width_scale(vrel)
        fluid = (np.abs(u - mid) < half) & (vrel > v_top) & (vrel < v_bot) & in_m
    elif tear == "full":
        vrel = v - bow
        L, R = ends(vrel, g0)
        fluid = (u > L) & (u < R) & (v > vs + fascia_w * 0.3) & (v < vd - fascia_w * 0.3)
    else:
        fluid = np.zeros((hh, ww), bool)
    if fluid.any() and haematoma is not None:
        echo = np.where(fluid, np.float32(muscle_lvl * float(haematoma) ** 2), echo)
    elif fluid.any():
        if anechoic:
            flv = float(rng.uniform(0.005, 0.03))
            echo = np.where(fluid, flv, echo)
        else:
            flv = muscle_lvl * float(rng.uniform(0.1, 0.25))
            blobs = cv2.GaussianBlur(rng.random((hh, ww)).astype(np.float32), (0, 0), 2.5 / mmpp * 0.5)
            blobs = (blobs - blobs.mean()) / (blobs.std() + 1e-6)
            clot = np.where(blobs > 1.2, muscle_lvl * 0.8, flv)
            echo = np.where(fluid, clot, echo)
    tex = _speckle((hh, ww), rng, sig_lat, sig_ax, gamma_k)
    # attenuation partly compensated by TGC
    att = np.exp(-float(rng.uniform(0.0, 0.025)) * ymm).astype(np.float32)
    ref = (echo * tex * att).astype(np.float32)

    # ---- frames: inverse map of each screen px to the reference
    gy, gx = np.mgrid[0:rh, 0:rw].astype(np.float32)
    fy = gy * mmpp
    fxm = (gx - rw / 2) * mmpp
    frames = np.zeros((n_frames, H, W, 3), np.uint8)
    gaps = np.full(n_frames, np.nan)
    vq = np.linspace(-thick / 2, thick / 2, 401)
    for i in range(n_frames):
        a = float(act[i])
        fyi = fy - drift[i, 1] * mmpp
        fxi = fxm - drift[i, 0] * mmpp
        uu = fxi * ct + (fyi - vc) * st
        vvv = -fxi * st + (fyi - vc) * ct
        if tear == "full":
            d = retract * a
            Lr, Rr = ends(vvv - curv * uu * uu, g0)
            Lt, Rt = Lr - d / 2, Rr + d / 2
            u_ref = np.where(uu <= Lt, uu + d / 2, np.where(uu >= Rt, uu - d / 2,
                             Lr + (uu - Lt) * (Rr - Lr) / np.maximum(Rt - Lt, 1e-3)))
            lq, rq = ends(vq[(vq >= -thick / 4) & (vq <= thick / 4)], g0)
            gaps[i] = float(np.mean(rq - lq)) + d
        else:
            k = 1.0 - shorten * a
            u_ref = uc + (uu - uc) / k
            if tear == "partial":
                sel = (vq >= v_top + 0.25 * ext) & (vq <= v_top + 0.75 * ext)
                lq, rq = ends(vq[sel], g0)
                gaps[i] = float(np.mean((rq - lq) * width_scale(vq[sel]))) * k
        # only the muscle (between the fasciae) retracts / shortens; other layers stay put
        vb_ = vvv - curv * uu * uu
        inm = (vb_ > -thick / 2) & (vb_ < thick / 2)
        u_ref = np.where(inm, u_ref, uu)
        # back to reference px
        xr = (u_ref * ct - vvv * st) / mmpp + rw / 2 + M
        yr = (u_ref * st + vvv * ct + vc) / mmpp + M
        img = cv2.remap(ref, xr.astype(np.float32), yr.astype(np.float32), cv2.INTER_LINEAR)
        img = img + 0.02 * rng.random(img.shape, dtype=np.float32) * muscle_lvl  # electronic noise
        db = 10 * np.log10(np.maximum(img, 1e-6)) + gain_db
        g = np.clip((db + dr_db * 0.75) / dr_db, 0, 1) * 255
        frames[i, oy:oy + rh, ox:ox + rw] = g.astype(np.uint8)[..., None]
    _decorate(frames, (ox, oy, rw, rh), mmpp, rng, seed)
    region = (ox, oy, ox + rw - 1, oy + rh - 1)
    cal = Calibration(source="us_region", regions=(Region(index=0, x0=region[0], y0=region[1], x1=region[2],
                                                           y1=region[3], delta_x=mmpp / 10, delta_y=mmpp / 10),),
                      detail="foreign simulator region")
    truth = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}[tear]
    # rest: the middle of the first stretch at the lowest activation; peak: the middle of the
    # stretch at the highest (a held contraction)
    rest = _middle_of_run(act <= act.min() + 0.02, int(np.argmin(act)))
    con = _middle_of_run(act >= act.max() - 0.02, int(np.argmax(act)))
    return ForeignLoop(
        frames=frames, fps=fps, calibration=cal, region=region, tear=tear, classification=truth,
        thickness_fraction={"full": 1.0, "partial": frac, "none": 0.0}[tear], gap_mm=gaps,
        activation=act, rest_frame=rest, contraction_frame=con,
        params=dict(profile=profile, tilt_deg=float(np.rad2deg(tilt)), fat_mm=fat, thick_mm=thick,
                    side=side if tear == "partial" else None, anechoic=anechoic, fascicles=str(fasc_kind),
                    dr_db=dr_db, gain_db=gain_db, mm_per_px=mmpp, shape=(n_frames, H, W), fps=fps,
                    slant=slant, retract_mm=retract, g0_mm=g0, haematoma=haematoma),
    )


def _middle_of_run(flags: np.ndarray, i: int) -> int:
    a = b = i
    while a > 0 and flags[a - 1]:
        a -= 1
    while b < flags.size - 1 and flags[b + 1]:
        b += 1
    return (a + b) // 2


def _decorate(frames, box, mmpp, rng, seed):
    """Screen furniture: depth scale with ticks, burned-in text, a logo, a focus marker."""
    n, H, W, _ = frames.shape
    ox, oy, rw, rh = box
    canvas = np.zeros((H, W, 3), np.uint8)
    sx = min(W - 12, ox + rw + 12)
    cv2.line(canvas, (sx, oy), (sx, oy + rh), (200, 200, 200), 1)
    step = 5.0 / mmpp  # a tick every 5 mm, longer every cm
    k = 0
    while k * step <= rh:
        y = int(oy + k * step)
        cv2.line(canvas, (sx, y), (sx + (8 if k % 2 == 0 else 4), y), (220, 220, 220), 1)
        if k % 2 == 0 and sx + 30 < W:
            cv2.putText(canvas, str(k // 2), (sx + 10, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (220, 220, 220), 1)
        k += 1
    font = cv2.FONT_HERSHEY_SIMPLEX
    lines = ["MSK  L12-5", f"Gn {int(rng.integers(30, 80))}  DR {int(rng.integers(50, 80))}",
             f"D {rh * mmpp / 10:.1f} cm", "FR 38 Hz"]
    for j, t in enumerate(lines):
        cv2.putText(canvas, t, (6, 40 + 16 * j), font, 0.4, (235, 235, 235), 1)
    cv2.putText(canvas, f"ID 000{seed}  MSUS FOREIGN", (6, 14), font, 0.4, (230, 230, 230), 1)
    cv2.circle(canvas, (W - 24, 16), 9, (90, 160, 230), -1)  # logo
    cv2.putText(canvas, "fs", (W - 31, 20), font, 0.35, (255, 255, 255), 1)
    cv2.drawMarker(canvas, (max(2, ox - 8), oy + rh // 3), (240, 240, 120), cv2.MARKER_TRIANGLE_DOWN, 8)
    mask = canvas.any(axis=2)
    for i in range(n):
        frames[i][mask] = canvas[mask]
        # a running frame counter (text that changes every frame)
        cv2.putText(frames[i], f"{i + 1:03d}", (6, H - 10), font, 0.45, (230, 230, 230), 1)


def write_dicom(loop: ForeignLoop, path, *, jpeg: bool = True) -> None:
    """Write ``loop`` as a multi-frame US DICOM with a Sequence of Ultrasound Regions (JPEG
    baseline frames when ``jpeg``, else native RGB)."""
    from msus.synth.dicom import TissueRegion, us_multiframe_dataset
    from msus.synth.dicom import write_dicom as save

    r = loop.calibration.regions[0]
    region = TissueRegion((r.x0, r.y0, r.x1, r.y1), r.delta_x, r.delta_y)
    save(us_multiframe_dataset(loop.frames, fps=loop.fps, jpeg=jpeg, quality=85, subsampling="420", region=region,
                               patient="Foreign^Phantom"), path)


def write_mp4(loop: ForeignLoop, path) -> None:
    """Write ``loop`` as an H.264 MP4 (yuv420p; no calibration travels with it)."""
    import av

    n, H, W, _ = loop.frames.shape
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=int(round(loop.fps)))
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "20", "preset": "veryfast"}
        for f in loop.frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
