"""Image formation: scatterers splatted as IQ, PSF, attenuation, TGC, noise, log compression."""

from __future__ import annotations

import math
import threading

import numpy as np

from msus.synth.params import ALPHA_REF_DB_PER_MM, SynthError, SynthParams, contraction_profile
from msus.synth.scene import Scene

#: Display mapping: envelope relative to muscle speckle RMS (dB) mapped to 0..255.
_DB_FLOOR = -24.0
_DB_RANGE = 70.0
#: Compounded looks (independent speckle realisations averaged in intensity).
_LOOKS = 2
#: Cell size (px) of the coarse attenuation grid.
_ATT_CELL = 6

#: Phase lookup table (cos, sin) with 4096 steps: fast and identical on every machine.
_LUT_N = 4096
_LUT = np.exp(2j * np.pi * np.arange(_LUT_N) / _LUT_N)
_LUT_COS, _LUT_SIN = _LUT.real.copy(), _LUT.imag.copy()


class Renderer:
    def __init__(self, scene: Scene):
        self.sc = scene
        p = scene.p
        self.act = contraction_profile(p.n_frames)
        rng = np.random.default_rng([p.seed, 1])
        import cv2
        from scipy.ndimage import gaussian_filter1d

        j = gaussian_filter1d(rng.standard_normal((p.n_frames, 2)), 1.5, axis=0, mode="nearest")
        j /= j.std(axis=0, keepdims=True) + 1e-12
        j *= p.jitter_mm / p.mm_per_px
        j[:, 1] *= 0.6  # less axial than lateral jitter
        self.jit = j
        self.slide = p.slide_mm / p.mm_per_px * self.act
        # PSF normalisation so that unit-amplitude speckle at the given density has unit RMS
        self.psf_norm = self._psf_norm()
        yy = np.arange(scene.H, dtype=float)
        hc, wc = (scene.H + _ATT_CELL - 1) // _ATT_CELL, (scene.W + _ATT_CELL - 1) // _ATT_CELL
        self.gain_db_coarse = cv2.resize(scene.gain_db, (wc, hc), interpolation=cv2.INTER_AREA)
        self.noise_level = (p.noise * 0.7 * scene.noise_gain).astype(np.float32)
        # PSF kernel truncated at ±3 sigma
        self.ksize = (2 * math.ceil(3 * scene.sig_x_focus) + 1, 2 * math.ceil(3 * scene.sig_z) + 1)
        self.extra_x = math.sqrt(1.0 + scene.sig_x_far**2 - scene.sig_x_focus**2)
        self.wfar = np.clip(np.abs(yy - scene.focus_y) / (0.6 * scene.H), 0, 1)[:, None]
        self._local = threading.local()
        self._prepare_points()

    def _psf_norm(self):
        sc = self.sc
        sx, sz = sc.sig_x_focus, sc.sig_z
        # sum of squares of a unit 2D Gaussian kernel with sigmas (sx, sz), incl. bilinear splat spread
        ssq = 1.0 / (4 * np.pi * math.sqrt((sx**2 + 1 / 6) * (sz**2 + 1 / 6)))
        return 1.0 / math.sqrt(sc.density * ssq)

    # ---- per-thread scratch buffers (avoid re-allocating ~100 MB of temporaries per frame) ----
    def _buf(self, name, shape, dtype=np.float64):
        bufs = self._local.__dict__.setdefault("bufs", {})
        arr = bufs.get(name)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = bufs[name] = np.empty(shape, dtype)
        return arr

    def _prepare_points(self):
        """Static per-scatterer arrays: rest image position and displacement bases."""
        sc = self.sc
        x0, y0 = sc.to_image(sc.u, sc.v)
        self.n_main = x0.size
        self.n_h = sc.h_w.size if sc.has_defect else 0
        self.n_b = sc.b_w.size if sc.has_defect else 0
        self.n_all = self.n_main + self.n_h + self.n_b
        amp = [sc.amp]
        ph0 = [sc.phase0]
        al = [sc.alpha]
        if sc.has_defect:
            amp.append(sc.h_amp)  # scaled per frame below
            ph0 += [sc.h_phase0, sc.b_phase0]
            amp.append(sc.b_amp)
            al += [np.full(self.n_h + self.n_b, 0.05)]
        self.x0, self.y0 = x0, y0
        self.ph0 = np.concatenate(ph0)
        self.amp_static = np.concatenate(amp) * self.psf_norm
        self.alpha_all = np.concatenate(al)
        # LUT-index offsets of each look's random phase (+0.5 for rounding)
        scale = _LUT_N / (2 * np.pi)
        self.ph_idx = [(look + 1) * self.ph0 * scale + 0.5 for look in range(_LOOKS)]
        self.k_idx = [sc.k2 * (1 - 0.15 * look) * scale for look in range(_LOOKS)]

    def points(self, i):
        """(x, y, amplitude) of every scatterer on frame i, in per-thread buffers."""
        sc = self.sc
        c = self.act[i]
        jx, jy = self.jit[i]
        slide = self.slide[i]
        R = sc.R_peak * c
        n, nm = self.n_all, self.n_main
        x = self._buf("x", (n,))
        y = self._buf("y", (n,))
        tmp = self._buf("tmp", (nm,))
        xm, ym = x[:nm], y[:nm]
        np.add(self.x0, jx, out=xm)
        np.add(self.y0, jy, out=ym)
        # u' = u + slide·ms + R·rf and v' = v + c·dv, rotated by the tilt
        for coef, arr in ((slide, sc.ms), (R, sc.rf), (c, sc.dv)):
            if coef == 0:
                continue
            cu, cv = (coef * sc.cos, coef * sc.sin) if arr is not sc.dv else (-coef * sc.sin, coef * sc.cos)
            np.multiply(arr, cu, out=tmp)
            xm += tmp
            np.multiply(arr, cv, out=tmp)
            ym += tmp
        amp = self.amp_static
        if sc.has_defect:
            amp = self._buf("amp", (n,))
            amp[:] = self.amp_static
            uL, uR = sc.stump_curves(c, slide)
            # haematoma: fills the space between the (frayed) stump ends
            hl = np.interp(sc.h_w, sc.wgrid, uL)
            hr = np.interp(sc.h_w, sc.wgrid, uR)
            hu = hl + sc.h_frac * (hr - hl)
            hv = sc.tissue_v(hu - slide, sc.h_w, c)
            hs = slice(nm, nm + self.n_h)
            x[hs], y[hs] = sc.to_image(hu, hv, jx, jy)
            amp[hs] *= np.sqrt(np.clip((hr - hl) / sc.h_wpeak, 0.05, 1.0))
            # floating echoes drift slowly within the fluid
            t = i / max(1.0, sc.p.fps)
            bf = np.clip(sc.b_frac + 0.06 * np.sin(0.9 * t + sc.b_drift[:, 0]), 0.05, 0.95)
            bw = sc.b_w + 0.03 * (sc.w1 - sc.w0) * np.sin(0.7 * t + sc.b_drift[:, 1])
            bl = np.interp(bw, sc.wgrid, uL)
            br = np.interp(bw, sc.wgrid, uR)
            bu = bl + bf * (br - bl) + sc.b_du
            bv = sc.tissue_v(bu - slide, bw, c) + sc.b_dv
            bs = slice(nm + self.n_h, n)
            x[bs], y[bs] = sc.to_image(bu, bv, jx, jy)
        return x, y, amp

    def _splat(self, x, y, amp, H, W):
        """Bilinear splat of the looks' complex amplitudes: returns (2·looks)×H×W float64."""
        n = x.size
        hw = H * W
        xf = self._buf("xf", (n,))
        yf = self._buf("yf", (n,))
        fx = self._buf("fx", (n,))
        fy = self._buf("fy", (n,))
        ok = self._buf("ok", (n,), bool)
        np.floor(x, out=xf)
        np.floor(y, out=yf)
        np.subtract(x, xf, out=fx)
        np.subtract(y, yf, out=fy)
        np.greater_equal(xf, 0, out=ok)
        ok &= xf < W - 1
        ok &= yf >= 0
        ok &= yf < H - 1
        # flat index of the top-left neighbour (0 for dropped points, whose weights are 0)
        yf *= W
        yf += xf
        yf *= ok
        idx = self._buf("idx", (4, n), np.intp)
        np.copyto(idx[0], yf, casting="unsafe")
        np.add(idx[0], 1, out=idx[1])
        np.add(idx[0], W, out=idx[2])
        np.add(idx[0], W + 1, out=idx[3])
        wts = self._buf("wts", (4, n))
        gy = self._buf("gy", (n,))
        np.subtract(1, fy, out=gy)
        gy *= ok
        fy *= ok
        gx = xf  # reuse: 1 - fx
        np.subtract(1, fx, out=gx)
        np.multiply(gx, gy, out=wts[0])
        np.multiply(fx, gy, out=wts[1])
        np.multiply(gx, fy, out=wts[2])
        np.multiply(fx, fy, out=wts[3])
        wts *= amp
        flat_idx = idx.reshape(-1)
        out = self._buf("iq", (2 * _LOOKS, H, W))
        ph = self._buf("ph", (n,))
        li = self._buf("li", (n,), np.intp)
        cs = self._buf("cs", (n,))
        wp = self._buf("wp", (4, n))
        for look in range(_LOOKS):
            # LUT index of the phase (look+1)·φ0 + 2k_look·y, rounded, modulo the table size
            np.multiply(y, self.k_idx[look], out=ph)
            ph += self.ph_idx[look]
            np.floor(ph, out=ph)
            np.copyto(li, ph, casting="unsafe")
            li &= _LUT_N - 1
            for part, table in enumerate((_LUT_COS, _LUT_SIN)):
                np.take(table, li, out=cs)
                np.multiply(wts, cs, out=wp)
                out[2 * look + part] = np.bincount(flat_idx, wp.reshape(-1), minlength=hw)[:hw].reshape(H, W)
        return out

    def frame(self, i) -> np.ndarray:
        import cv2

        sc, p = self.sc, self.sc.p
        H, W = sc.H, sc.W
        x, y, a = self.points(i)
        # two looks (spatial/frequency compounding): independent scatterer phases, carrier phase 2k·z
        iq = self._splat(x, y, a, H, W)
        n_planes = iq.shape[0]
        # PSF: axial pulse envelope × lateral beam (at focus; the widening with depth is applied
        # to the intensity below, which is cheaper and looks the same after compounding)
        for k in range(n_planes):
            cv2.GaussianBlur(iq[k], self.ksize, dst=iq[k], sigmaX=sc.sig_x_focus, sigmaY=sc.sig_z, borderType=cv2.BORDER_REFLECT)
        # attenuation along each beam line (coarse grid), compensated by the TGC for soft tissue
        f = _ATT_CELL
        hc, wc = (H + f - 1) // f, (W + f - 1) // f
        xa, ya, aa = x[::4], y[::4], self.alpha_all[::4]  # a quarter of the scatterers suffices here
        ok = (ya >= 0) & (ya < hc * f) & (xa >= 0) & (xa < W)
        cell = np.where(ok, (ya // f) * wc + np.minimum(xa // f, wc - 1), hc * wc).astype(np.intp)
        cnt = np.bincount(cell, minlength=hc * wc + 1)[: hc * wc]
        asum = np.bincount(cell, aa, minlength=hc * wc + 1)[: hc * wc]
        alpha = np.where(cnt > 0, asum / np.maximum(cnt, 1), ALPHA_REF_DB_PER_MM).reshape(hc, wc)
        att_db = np.cumsum((alpha - ALPHA_REF_DB_PER_MM) * f * p.mm_per_px, axis=0)
        att_db = np.minimum(att_db, 80.0)
        gain = self._buf("gain", (H, W))
        cv2.resize(np.power(10.0, (self.gain_db_coarse - att_db) / 20), (W, H), dst=gain, interpolation=cv2.INTER_LINEAR)
        rng = np.random.default_rng([p.seed, 2, i])
        # electronic noise, band-limited by the receiver (drawn at half resolution)
        hn, wn = (H + 1) // 2, (W + 1) // 2
        small = rng.standard_normal((n_planes, hn, wn), dtype=np.float32)
        noise = self._buf("noise", (H, W), np.float32)
        env2 = self._buf("env2", (H, W))
        env2.fill(0.0)
        for k in range(n_planes):
            plane = iq[k]
            plane *= gain
            cv2.resize(small[k], (W, H), dst=noise, interpolation=cv2.INTER_LINEAR)
            noise *= self.noise_level
            plane += noise
            plane *= plane
            env2 += plane
        env2 *= 1.0 / _LOOKS
        # beam widening away from the focus, plus mild video smoothing; then log compression
        far = self._buf("far", (H, W))
        g = self._buf("g", (H, W))
        cv2.GaussianBlur(env2, (0, 0), dst=far, sigmaX=self.extra_x, sigmaY=0.8, borderType=cv2.BORDER_REFLECT)
        cv2.GaussianBlur(env2, (0, 0), dst=g, sigmaX=1.0, sigmaY=0.8, borderType=cv2.BORDER_REFLECT)
        far -= g
        far *= self.wfar
        g += far
        g += 1e-12
        np.log10(g, out=g)
        g *= 10 * 255.0 / _DB_RANGE
        g += 0.5 - _DB_FLOOR * 255.0 / _DB_RANGE
        np.floor(g, out=g)
        np.clip(g, 0, 255, out=g)
        return g.astype(np.uint8)


def render_frames(params: SynthParams, indices) -> np.ndarray:
    """Render only some frames of a loop (identical to the same frames of :func:`simulate`).

    Parameters
    ----------
    params
        Phantom parameters.
    indices
        Frame indices (0-based).

    Returns
    -------
    numpy.ndarray
        uint8 array len(indices)×H×W.
    """
    rend = Renderer(Scene(params))
    idx = [int(i) for i in indices]
    for i in idx:
        if not 0 <= i < params.n_frames:
            raise SynthError(f"frame {i} out of range (loop has {params.n_frames} frames)")
    out = np.empty((len(idx), params.rows, params.columns), np.uint8)
    for k, i in enumerate(idx):
        out[k] = rend.frame(i)
    return out
