"""The static anatomy of a phantom (point scatterers at rest) and its per-frame motion model."""

from __future__ import annotations

import math

import numpy as np

from msus.synth.params import ALPHA_REF_DB_PER_MM, SOUND_SPEED_MM_PER_US, SynthParams


class Scene:
    """Static anatomy (scatterers at rest) plus the per-frame motion model."""

    def __init__(self, p: SynthParams):
        self.p = p
        s = p.mm_per_px
        self.H, self.W = p.rows, p.columns
        rng = np.random.default_rng([p.seed, 0])
        th = math.radians(p.fascia_tilt_deg)
        self.cos, self.sin = math.cos(th), math.sin(th)
        self.cx = (self.W - 1) / 2.0
        self.cy = p.muscle_depth_mm / s
        self.T0 = p.muscle_thickness_mm / s  # px
        self.uc = p.tear_offset_mm / s
        # carrier: phase advance per px of depth (round trip)
        lam = SOUND_SPEED_MM_PER_US / p.frequency_mhz
        self.k2 = 4 * math.pi * s / lam
        # PSF sigmas (px): axial 1.1 λ (a ~2-cycle Gaussian pulse), lateral 2 λ at the focus
        self.sig_z = max(0.7, (1.1 * lam) / s)  # px
        self.sig_x_focus = max(1.0, (2.0 * lam) / s)
        self.sig_x_far = self.sig_x_focus * 1.8
        self.focus_y = (p.muscle_depth_mm + 0.5 * p.muscle_thickness_mm) / s
        # fascia undulations and thickness variation along the muscle (px)
        self.und = [
            (rng.uniform(0.15, 0.35) / s, rng.uniform(25, 45) / s, rng.uniform(0, 2 * np.pi)),
            (rng.uniform(0.15, 0.35) / s, rng.uniform(25, 45) / s, rng.uniform(0, 2 * np.pi)),
        ]
        self.taper = rng.uniform(-0.05, 0.05)
        self.fw_sup = 1.0 / s
        self.fw_deep = 0.8 / s
        self.bone_gap = p.bone_gap_mm / s
        self.bone_curv = rng.uniform(0.5, 1.0) * 1e-3 * s  # px^-1 (gentle convex)
        self._build_defect(rng)
        self._build_scatterers(rng)
        self._build_gain(rng)

    # ---- geometry (reference configuration, tissue coordinates u along axis, v depth) --------
    def v_sup(self, u):
        a, lam, ph = self.und[0]
        return a * np.sin(2 * np.pi * u / lam + ph)

    def v_deep(self, u):
        a, lam, ph = self.und[1]
        half_w = self.W / 2
        return self.T0 * (1 + self.taper * u / half_w) + a * np.sin(2 * np.pi * u / lam + ph)

    def v_bone(self, u):
        return self.v_deep(u) + self.bone_gap - self.bone_curv * u**2

    def to_image(self, u, v, jx=0.0, jy=0.0):
        x = self.cx + u * self.cos - v * self.sin + jx
        y = self.cy + u * self.sin + v * self.cos + jy
        return x, y

    def to_tissue(self, x, y):
        dx, dy = x - self.cx, y - self.cy
        return dx * self.cos + dy * self.sin, -dx * self.sin + dy * self.cos

    # ---- defect ----------------------------------------------------------------------------
    def _build_defect(self, rng):
        p, s = self.p, self.p.mm_per_px
        self.has_defect = p.tear != "none"
        self.wgrid = np.linspace(0.0, 1.0, 801)
        if not self.has_defect:
            self.w0 = self.w1 = 0.5
            self.R_peak = 0.0
            return
        if p.tear == "full":
            w0, w1 = 0.0, 1.0
        else:
            w0 = p.partial_position - p.partial_fraction / 2
            w1 = p.partial_position + p.partial_fraction / 2
        self.w0, self.w1 = w0, w1
        wg = np.linspace(w0, w1, 801)
        self.wgrid = wg
        q = (wg - w0) / (w1 - w0)  # 0..1 across the torn span
        if p.tear == "full":
            shape = np.ones_like(q)
            taper = np.ones_like(q)
        else:  # lens-shaped cleft, closing at its upper and lower tips
            shape = np.clip(1 - (2 * q - 1) ** 2, 0, 1) ** 0.25
            taper = 0.6 * shape**0.5

        def fray():
            # smooth undulation + fibre-bundle steps (bundles ~0.5 mm thick protrude randomly)
            f = np.zeros_like(q)
            for _ in range(3):
                f += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(0.5, 2.5) * q + rng.uniform(0, 2 * np.pi))
            depth_px = (w1 - w0) * self.T0
            n_b = max(3, int(depth_px * s / 0.5))
            steps = rng.exponential(0.45, n_b) - 0.3
            idx = np.minimum((q * n_b).astype(int), n_b - 1)
            f += steps[idx]
            return f * p.fray_mm / s * taper

        fl, fr = fray(), fray()  # positive = protruding into the gap
        central = (q >= 0.25) & (q <= 0.75)
        g = p.gap_rest_mm / s
        # choose the half width so that the central-half mean gap equals gap_rest exactly
        base = (g + np.mean(fl[central] + fr[central])) / max(1e-9, np.mean(shape[central]))
        uL = self.uc - 0.5 * base * shape + fl
        uR = self.uc + 0.5 * base * shape - fr
        uR = np.maximum(uR, uL + 0.2)  # never cross
        self.uL0, self.uR0 = uL, uR
        self.central = central
        self.R_peak = (p.gap_contraction_mm - p.gap_rest_mm) / s if p.tear == "full" else 0.0
        # retraction taper: stump ends move by the full R/2, tissue far away is anchored
        self.d0 = max(np.max(self.uc - uL), np.max(uR - self.uc)) + 1.0 / s
        self.L_taper = 22.0 / s

    def _retract_weight(self, u):
        d = np.abs(u - self.uc)
        t = np.clip((d - self.d0) / self.L_taper, 0, 1)
        return 0.5 + 0.5 * np.cos(np.pi * t)

    # ---- scatterers ------------------------------------------------------------------------
    def _build_scatterers(self, rng):
        p, s = self.p, self.p.mm_per_px
        H, W = self.H, self.W
        # ≈ 10 scatterers per resolution cell (fully developed speckle) at any pixel size
        density = float(np.clip(10.0 / (2 * np.pi * self.sig_x_focus * self.sig_z), 0.15, 1.2))
        margin = (abs(p.slide_mm) + 4 * p.jitter_mm + 2.0) / s + 4 * self.sig_x_far
        if self.has_defect:
            margin += self.R_peak / 2
        x0, x1 = -margin, W - 1 + margin
        y0, y1 = -3 * self.sig_z - 2, H - 1 + 3 * self.sig_z + 2 + 4 * p.jitter_mm / s
        n = int(density * (x1 - x0) * (y1 - y0))
        x = rng.uniform(x0, x1, n)
        y = rng.uniform(y0, y1, n)
        u, v = self.to_tissue(x, y)
        vs, vd, vb = self.v_sup(u), self.v_deep(u), self.v_bone(u)
        depth_mm = y * s
        amp = np.ones(n)
        alpha = np.full(n, ALPHA_REF_DB_PER_MM)  # dB/mm round trip
        ms = np.zeros(n)  # slide multiplier
        dv = np.zeros(n)  # depth displacement at full activation (px)
        rf = np.zeros(n)  # retraction multiplier (±weight/2)
        keep = np.ones(n, bool)

        # smooth heterogeneity of echogenicity (log-normal, ~2 mm correlation)
        het = self._smooth_field(rng, x, y, corr_mm=2.0, x0=x0, y0=y0, x1=x1, y1=y1)
        amp *= np.exp(0.18 * het)

        skin = depth_mm < 0.7
        dermis = (depth_mm >= 0.7) & (depth_mm < 2.0)
        fat = (v < vs - self.fw_sup) & ~skin & ~dermis
        fsup = (v >= vs - self.fw_sup) & (v < vs)
        mus = (v >= vs) & (v <= vd)
        fdeep = (v > vd) & (v <= vd + self.fw_deep)
        deepm = (v > vd + self.fw_deep) & (v < vb)
        bone = (v >= vb) & (v < vb + 0.5 / s)
        below = v >= vb + 0.5 / s

        amp[skin] *= 4.5
        alpha[skin] = 0.5
        amp[dermis] *= 1.6
        ms[skin | dermis] = 0.0
        # subcutaneous fat: hypoechoic lobules with a few bright wavy septa
        amp[fat] *= 0.45
        alpha[fat] = 0.30
        ms[fat] = 0.15
        if fat.any():
            amp[fat] *= 1 + 6.0 * self._septa(rng, x[fat], y[fat])
        # fascia: bright, speckled, slightly varying along its length
        along = self._smooth_field(rng, x, y, corr_mm=4.0, x0=x0, y0=y0, x1=x1, y1=y1)
        amp[fsup] *= 20.0 * np.exp(0.25 * along[fsup])
        amp[fdeep] *= 16.0 * np.exp(0.25 * along[fdeep])
        alpha[fsup | fdeep] = 0.6
        ms[fsup | fdeep] = 1.0
        # muscle: pennate fascicle lines (perimysium) on a darker background
        w = np.zeros(n)
        w[mus | fsup | fdeep] = (v - vs)[mus | fsup | fdeep] / (vd - vs)[mus | fsup | fdeep]
        amp[mus] *= 0.5 * (1 + 8.0 * self._fascicles(rng, u[mus], v[mus]))
        ms[mus] = 1.0
        m = mus | fsup | fdeep
        dv[m] = (v - vs)[m] * p.thickening
        # deeper muscle (weaker fascicles), compressed as the muscle above thickens
        amp[deepm] *= 0.55 * (1 + 5.0 * self._fascicles(rng, u[deepm], v[deepm], angle=8.0, spacing_mm=2.2))
        ms[deepm] = 0.3
        thick = (vd - vs) * p.thickening
        dv[deepm] = thick[deepm] * np.clip((vb - v)[deepm] / np.maximum(1, (vb - vd))[deepm], 0, 1)
        # bone: very bright cortex, almost total attenuation below (acoustic shadow)
        amp[bone] *= 22.0
        alpha[bone] = 8.0
        amp[below] *= 0.04
        alpha[below] = 2.0

        # defect: muscle scatterers inside the torn region belong to the haematoma instead
        if self.has_defect:
            self._carve_defect(mus & (w >= self.w0) & (w <= self.w1), w, u, keep, rf)
        sel = keep
        self.u, self.v = u[sel], v[sel]
        self.amp, self.alpha = amp[sel], alpha[sel]
        self.ms, self.dv, self.rf = ms[sel], dv[sel], rf[sel]
        self.phase0 = rng.uniform(0, 2 * np.pi, int(sel.sum()))
        self.density = density
        if self.has_defect:
            self._build_haematoma(rng)

    def _septa(self, rng, xf, yf):
        """Subcutaneous fat septa: a few bright wavy, broken lines; weight in [0, 1] at (xf, yf)."""
        p, s = self.p, self.p.mm_per_px
        fat_top = 2.0 / s
        fat_bot = (p.muscle_depth_mm - 0.8) / s
        n_septa = int(rng.integers(3, 6))
        sep = np.zeros(xf.size)
        for k in range(n_septa):
            yk = fat_top + (k + 0.5 + rng.uniform(-0.3, 0.3)) * (fat_bot - fat_top) / n_septa
            slope = rng.uniform(-0.12, 0.12)
            a, lam, ph = rng.uniform(0.2, 0.8) / s, rng.uniform(8, 25) / s, rng.uniform(0, 6.3)
            yline = yk + slope * (xf - self.cx) + a * np.sin(2 * np.pi * xf / lam + ph)
            seg = np.sin(2 * np.pi * xf / rng.uniform(6, 15) * s + rng.uniform(0, 6.3)) > -0.4
            sep = np.maximum(sep, np.exp(-0.5 * ((yf - yline) / (0.12 / s)) ** 2) * seg)
        return sep

    def _carve_defect(self, tor, w, u, keep, rf):
        """Muscle scatterers inside the torn region (mask ``tor``) leave (``keep``); the stumps'
        scatterers get their retraction multiplier ``rf`` (in place)."""
        uL = np.interp(w[tor], self.wgrid, self.uL0)
        uR = np.interp(w[tor], self.wgrid, self.uR0)
        inside = (u[tor] > uL) & (u[tor] < uR)
        idx = np.flatnonzero(tor)
        keep[idx[inside]] = False
        if self.R_peak > 0:
            side = np.where(u[tor] < self.uc, -0.5, 0.5)
            rf[idx] = side * self._retract_weight(u[tor])

    def _smooth_field(self, rng, x, y, corr_mm, x0, y0, x1, y1):
        """Zero-mean, unit-variance smooth random field sampled at (x, y)."""
        from scipy.ndimage import gaussian_filter, map_coordinates

        step = corr_mm / self.p.mm_per_px / 2
        gh = int((y1 - y0) / step) + 3
        gw = int((x1 - x0) / step) + 3
        g = gaussian_filter(rng.standard_normal((gh, gw)), 1.0, mode="wrap")
        g /= g.std() + 1e-12
        return map_coordinates(g, [(y - y0) / step, (x - x0) / step], order=1, mode="nearest")

    def _fascicles(self, rng, u, v, angle=None, spacing_mm=1.7):
        """Line field in [0, 1]: thin bright fascicle lines at the pennation angle, broken up."""
        p, s = self.p, self.p.mm_per_px
        if u.size == 0:
            return np.zeros(0)
        a = math.radians(self.p.fascicle_angle_deg if angle is None else angle)
        # fibres rise towards +u from the deep to the superficial aponeurosis
        n_coord = u * math.sin(a) + v * math.cos(a)  # across the fibres
        m_coord = u * math.cos(a) - v * math.sin(a)  # along the fibres
        sp = spacing_mm / s
        k = np.floor(n_coord / sp).astype(np.int64)
        k_off = k - k.min()
        nk = int(k_off.max()) + 2
        offs = rng.uniform(-0.35, 0.35, nk) * sp
        strength = rng.uniform(0.3, 1.0, nk)
        centre = (k + 0.5) * sp + offs[k_off]
        width = 0.07 / s + 0.45  # px (thin, the PSF widens it)
        line = np.exp(-0.5 * ((n_coord - centre) / width) ** 2)
        # each line is broken into segments (~6 mm) whose breaks do not align between lines
        seglen = 6.0 / s
        shift = rng.uniform(0, seglen, nk)
        j = np.floor((m_coord + shift[k_off]) / seglen).astype(np.int64)
        j_off = j - j.min()
        nj = int(j_off.max()) + 1
        on = rng.uniform(0, 1, (nk, nj)) < 0.75
        return line * strength[k_off] * on[k_off, j_off]

    def _build_haematoma(self, rng):
        p, s = self.p, self.p.mm_per_px
        span_px = (self.w1 - self.w0) * self.T0
        width_peak = np.mean(self.uR0 - self.uL0) + self.R_peak
        n = int(self.density * span_px * width_peak * 1.05) + 10
        self.h_frac = rng.uniform(0, 1, n)
        self.h_w = rng.uniform(self.w0, self.w1, n)
        self.h_phase0 = rng.uniform(0, 2 * np.pi, n)
        self.h_amp = 0.14 * np.exp(0.25 * rng.standard_normal(n))
        self.h_wpeak = np.interp(self.h_w, self.wgrid, self.uR0 - self.uL0) + self.R_peak
        # floating echoes: small clusters of bright scatterers drifting in the fluid
        nb = int(rng.integers(5, 10))
        per = 6
        self.b_frac = np.repeat(rng.uniform(0.15, 0.85, nb), per)
        self.b_w = np.repeat(rng.uniform(self.w0 + 0.1 * (self.w1 - self.w0), self.w1 - 0.1 * (self.w1 - self.w0), nb), per)
        self.b_du = rng.normal(0, 0.25 / s, nb * per)
        self.b_dv = rng.normal(0, 0.1 / s, nb * per)
        self.b_amp = np.repeat(rng.uniform(0.8, 2.0, nb), per)
        self.b_phase0 = rng.uniform(0, 2 * np.pi, nb * per)
        self.b_drift = np.repeat(rng.uniform(0, 2 * np.pi, (nb, 2)), per, axis=0)

    def _build_gain(self, rng):
        """Residual TGC variation (smooth over depth, ±~1.5 dB) and lateral fall-off at the edges."""
        H, W = self.H, self.W
        yy = np.linspace(0, 1, H)
        g = np.zeros(H)
        for _ in range(3):
            g += rng.uniform(-0.6, 0.6) * np.sin(np.pi * rng.uniform(0.5, 2.5) * yy + rng.uniform(0, 6.3))
        xx = np.abs(np.linspace(-1, 1, W))
        lat = -1.5 * np.clip((xx - 0.85) / 0.15, 0, 1) ** 2
        self.gain_db = g[:, None] + lat[None, :]
        # TGC noise grows with depth (receiver gain)
        self.noise_gain = 0.6 + 0.8 * yy[:, None]

    # ---- motion ------------------------------------------------------------------------------
    def stump_curves(self, c, slide):
        """Displaced stump ends (uL, uR) on the defect's w grid for activation ``c``."""
        R = self.R_peak * c
        return self.uL0 + slide - R / 2, self.uR0 + slide + R / 2

    def tissue_v(self, u_ref, w, c):
        """Depth v (px) of relative depth w at reference position u_ref, at activation c."""
        vs = self.v_sup(u_ref)
        return vs + w * (self.v_deep(u_ref) - vs) * (1 + self.p.thickening * c)

