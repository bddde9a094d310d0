/**
 * SynthCXR frontal (PA) radiograph renderer.
 *
 * The image is an analytic attenuation field evaluated per pixel in "anatomical" coordinates
 * (u across, v down, both 0..1, patient's right on the image left as on a PA film), then mapped
 * through a per-study acquisition transform (tilt, scale, shift), a display curve (window, gamma)
 * and noise. Findings change the field and report the pixels where they show, which gives each
 * its ground-truth box in pixel coordinates.
 */
import type { Finding, FindingKind, Side } from './plan.js';
import { FINDING_OBSERVATION } from './plan.js';
import type { Observation } from '../../text/chexpert.js';
import { Rng } from './rng.js';

/** A ground-truth box: `[x0, y0, x1, y1]` in pixels, x1/y1 exclusive (so width = x1 - x0). */
export interface FindingBox {
  finding: FindingKind;
  observation: Observation;
  side?: Side;
  lobe?: string;
  size?: string;
  certain: boolean;
  box: [number, number, number, number];
}

export interface RenderedImage {
  width: number;
  height: number;
  /** 8-bit grey, row-major. */
  pixels: Uint8Array;
  boxes: FindingBox[];
}

const sq = (x: number) => x * x;
const hyp = (x: number, y: number) => Math.sqrt(x * x + y * y);
const clamp = (x: number, a: number, b: number) => (x < a ? a : x > b ? b : x);
function smooth(e0: number, e1: number, x: number): number {
  const t = clamp((x - e0) / (e1 - e0), 0, 1);
  return t * t * (3 - 2 * t);
}

/** 65536 standard normal deviates from a fixed seed, indexed by the study RNG (cheap acquisition noise). */
export const GAUSS = (() => {
  const g = new Float64Array(65536);
  const r = new Rng(0x5eed);
  for (let i = 0; i < g.length; i++) g[i] = r.normal();
  return g;
})();

/** Value noise on a (n+1)^2 lattice, sampled with smooth bilinear interpolation on [0,1]^2. */
export class Noise {
  private g: Float32Array;
  constructor(
    r: Rng,
    private n: number,
  ) {
    this.g = new Float32Array((n + 1) * (n + 1));
    for (let i = 0; i < this.g.length; i++) this.g[i] = r.next();
  }
  at(u: number, v: number): number {
    const n = this.n;
    const x = clamp(u, 0, 0.9999) * n;
    const y = clamp(v, 0, 0.9999) * n;
    const i = x | 0;
    const j = y | 0;
    let fx = x - i;
    let fy = y - j;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    const w = n + 1;
    const a = this.g[j * w + i];
    const b = this.g[j * w + i + 1];
    const c = this.g[(j + 1) * w + i];
    const d = this.g[(j + 1) * w + i + 1];
    return a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy;
  }
}

interface Poly {
  pts: Float64Array; // x0,y0,x1,y1,...
  th: number;
}


/** Distance from (u,v) to a polyline. */
function polyDist(a: Float64Array, u: number, v: number): number {
  let best = 1e9;
  for (let k = 0; k + 3 < a.length; k += 2) {
    const x0 = a[k];
    const y0 = a[k + 1];
    const dx = a[k + 2] - x0;
    const dy = a[k + 3] - y0;
    const L = dx * dx + dy * dy;
    const t = L > 0 ? clamp(((u - x0) * dx + (v - y0) * dy) / L, 0, 1) : 0;
    const ex = u - x0 - t * dx;
    const ey = v - y0 - t * dy;
    const d = ex * ex + ey * ey;
    if (d < best) best = d;
  }
  return Math.sqrt(best);
}

/** Catmull-Rom spline through control points, sampled to a polyline. */
function spline(ctrl: number[][], th: number, steps = 8): Poly {
  const out: number[] = [];
  const P = [ctrl[0], ...ctrl, ctrl[ctrl.length - 1]];
  for (let i = 1; i < P.length - 2; i++) {
    for (let s = 0; s < steps; s++) {
      const t = s / steps;
      const t2 = t * t;
      const t3 = t2 * t;
      for (let c = 0; c < 2; c++) {
        const p0 = P[i - 1][c];
        const p1 = P[i][c];
        const p2 = P[i + 1][c];
        const p3 = P[i + 2][c];
        out.push(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3));
      }
    }
  }
  const last = ctrl[ctrl.length - 1];
  out.push(last[0], last[1]);
  return { pts: Float64Array.from(out), th };
}

/** Lung shape parameters (one side), in lateral distance d from the midline and height v. */
interface LungGeom {
  dc: number;
  vc: number;
  rx: number;
  ry: number;
  dome: number; // dome top height
}

/** Superellipse "radius" (1 on the boundary) of a lung outline. */
function lungSE(g: LungGeom, d: number, v: number): number {
  const x = Math.abs(d - g.dc) / g.rx;
  const y = Math.abs(v - g.vc) / g.ry;
  // rounded, tapering apex above the centre; fuller, squarer base below it
  if (v < g.vc) return x * x + y * y * (1 + 0.6 * y);
  return x * x * x + y * y * y;
}

function domeV(g: LungGeom, d: number): number {
  return g.dome + 2.3 * (d - 0.16) * (d - 0.16);
}

/** Per-pixel buffers shared by the render passes (one pass per layer keeps each loop small and monomorphic). */
class Buf {
  readonly n: number;
  readonly U: Float64Array;
  readonly V: Float64Array;
  readonly I: Float64Array; // attenuation-like intensity, brighter = denser
  readonly lung: Float64Array; // aerated lung (0..1) after heart, mediastinum, fluid
  readonly lung0: Float64Array; // lung outline before the dome
  readonly domeM: Float64Array;
  readonly heart: Float64Array;
  readonly medi: Float64Array;
  readonly se: Float64Array;
  readonly dv: Float64Array;
  readonly hw: Float64Array;
  readonly body: Float64Array;
  readonly tn: Float64Array;
  readonly rim: Float64Array;
  readonly n1: Float64Array;
  readonly q2: Float64Array;
  readonly dh: Float64Array;
  readonly box: Int32Array; // per finding: x0, y0, x1, y1 (inclusive), x1 < 0 when never seen
  constructor(
    readonly S: number,
    nf: number,
  ) {
    const n = (this.n = S * S);
    this.U = new Float64Array(n);
    this.V = new Float64Array(n);
    this.I = new Float64Array(n);
    this.lung = new Float64Array(n);
    this.lung0 = new Float64Array(n);
    this.domeM = new Float64Array(n);
    this.heart = new Float64Array(n);
    this.medi = new Float64Array(n);
    this.se = new Float64Array(n);
    this.dv = new Float64Array(n);
    this.hw = new Float64Array(n);
    this.body = new Float64Array(n);
    this.tn = new Float64Array(n);
    this.rim = new Float64Array(n);
    this.n1 = new Float64Array(n);
    this.q2 = new Float64Array(n);
    this.dh = new Float64Array(n);
    this.box = new Int32Array(4 * Math.max(1, nf));
    for (let i = 0; i < nf; i++) {
      this.box[4 * i] = 1 << 30;
      this.box[4 * i + 1] = 1 << 30;
      this.box[4 * i + 2] = -1;
      this.box[4 * i + 3] = -1;
    }
  }
  track(i: number, k: number): void {
    const x = k % this.S;
    const y = (k - x) / this.S;
    const b = this.box;
    if (x < b[4 * i]) b[4 * i] = x;
    if (y < b[4 * i + 1]) b[4 * i + 1] = y;
    if (x > b[4 * i + 2]) b[4 * i + 2] = x;
    if (y > b[4 * i + 3]) b[4 * i + 3] = y;
  }
}

let cachedBuf: Buf | undefined;
/** Reuses the buffers between images of the same size (they are fully rewritten by the passes). */
function getBuf(S: number, nf: number): Buf {
  if (!cachedBuf || cachedBuf.S !== S || cachedBuf.box.length < 4 * nf) cachedBuf = new Buf(S, Math.max(nf, 16));
  const b = cachedBuf;
  b.rim.fill(0);
  for (let i = 0; i < b.box.length / 4; i++) {
    b.box[4 * i] = 1 << 30;
    b.box[4 * i + 1] = 1 << 30;
    b.box[4 * i + 2] = -1;
    b.box[4 * i + 3] = -1;
  }
  return b;
}

/** Numeric anatomy/acquisition parameters of one study (all fields numbers: one hidden class). */
class Anatomy {
  lungs: [LungGeom, LungGeom];
  torsoW: number;
  heartRxL: number;
  heartRxR: number;
  heartCx: number;
  heartCy: number;
  heartRy: number;
  HC: number;
  HS: number;
  mediW: number;
  mediWiden = 0;
  ribV0: number;
  ribSp: number;
  ribTh: number;
  antV0: number;
  clavV: number;
  hilumV: number;
  tilt: number;
  scale: number;
  cx: number;
  cy: number;
  gain: number;
  black: number;
  gamma: number;
  noiseSd: number;
  lungDark: number;
  constructor(r: Rng) {
    this.lungs = [0, 1].map((s) => ({
      dc: 0.215 + r.uniform(-0.012, 0.012),
      vc: 0.46 + r.uniform(-0.015, 0.015),
      rx: 0.175 + r.uniform(-0.012, 0.012),
      ry: 0.38 + r.uniform(-0.015, 0.015),
      dome: (s === 0 ? 0.68 : 0.71) + r.uniform(-0.02, 0.02),
    })) as [LungGeom, LungGeom];
    this.torsoW = 0.45 + r.uniform(-0.02, 0.02);
    this.heartRxL = 0.165 + r.uniform(-0.012, 0.012); // toward patient's left (image right)
    this.heartRxR = 0.085 + r.uniform(-0.008, 0.008);
    this.heartCx = 0.525 + r.uniform(-0.01, 0.01);
    this.heartCy = 0.61 + r.uniform(-0.015, 0.015);
    this.heartRy = 0.125 + r.uniform(-0.01, 0.01);
    const heartAng = 0.4 + r.uniform(-0.08, 0.08); // long axis down towards the apex (image right)
    this.HC = Math.cos(heartAng);
    this.HS = Math.sin(heartAng);
    this.mediW = 0.052 + r.uniform(-0.005, 0.005);
    this.ribV0 = 0.165 + r.uniform(-0.015, 0.01);
    this.ribSp = 0.06 + r.uniform(-0.004, 0.004);
    this.ribTh = 0.0125 + r.uniform(-0.0015, 0.0015);
    this.antV0 = 0.17 + r.uniform(-0.01, 0.01);
    const L = this.lungs;
    this.clavV = Math.min(L[0].vc - L[0].ry * 0.8, L[1].vc - L[1].ry * 0.8) + 0.05 + r.uniform(-0.01, 0.015);
    this.hilumV = 0.45 + r.uniform(-0.02, 0.02);
    this.tilt = r.uniform(-0.07, 0.07); // radians, about +-4 degrees
    this.scale = r.uniform(0.9, 1.02);
    this.cx = 0.5 + r.uniform(-0.025, 0.025);
    this.cy = 0.5 + r.uniform(-0.02, 0.03);
    this.gain = r.uniform(1.15, 1.4);
    this.black = r.uniform(0.02, 0.08);
    this.gamma = r.uniform(0.8, 1.2);
    this.noiseSd = r.uniform(0.012, 0.03);
    this.lungDark = r.uniform(0.3, 0.38);
  }
}

const N_RIB = 10;
const HILA_U = [0.5 - 0.1, 0.5 + 0.105];

function passCoords(b: Buf, A: Anatomy): void {
  const S = b.S;
  const c = Math.cos(A.tilt);
  const s = Math.sin(A.tilt);
  for (let py = 0; py < S; py++)
    for (let px = 0; px < S; px++) {
      const dx = ((px + 0.5) / S - A.cx) / A.scale;
      const dy = ((py + 0.5) / S - A.cy) / A.scale;
      b.U[py * S + px] = 0.5 + c * dx + s * dy;
      b.V[py * S + px] = 0.5 - s * dx + c * dy;
    }
}

function passNoise(b: Buf, tissue: Noise, mark: Noise, mark2: Noise, A: Anatomy): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    const v = b.V[k];
    const s = u < 0.5 ? 0 : 1;
    b.tn[k] = tissue.at(u, v);
    const hu = u - HILA_U[s];
    const hv = (v - A.hilumV) * 0.9;
    const dh = Math.sqrt(hu * hu + hv * hv);
    b.dh[k] = dh;
    const ang = Math.atan2(v - A.hilumV, Math.abs(hu) + 1e-6) / Math.PI + 0.5;
    b.n1[k] = mark.at(ang * 0.9 + s * 0.05, dh * 0.6 + 0.2);
    b.q2[k] = 1 - Math.abs(2 * mark2.at(u, v) - 1);
  }
}

/** Body outline, lungs, heart, mediastinum. */
function passAnatomy(b: Buf, A: Anatomy): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    const v = b.V[k];
    const a = u - 0.5;
    const ad = Math.abs(a);
    const g = a < 0 ? A.lungs[0] : A.lungs[1];
    const W = A.torsoW + 0.02;
    const hw = v < 0.24 ? 0.12 + (W - 0.12) * Math.sqrt(smooth(0.0, 0.24, v)) : W - 0.04 * smooth(0.55, 1.0, v);
    const body = smooth(hw + 0.012, hw - 0.012, ad) * smooth(-0.05, 0.02, v);
    const t = a / (hw + 0.02);
    const thick01 = Math.sqrt(Math.max(0, 1 - t * t));
    b.hw[k] = hw;
    b.body[k] = body;
    b.I[k] = 0.03 + body * (0.25 + 0.27 * thick01 + 0.05 * (b.tn[k] - 0.5));
    const se = lungSE(g, ad, v);
    const lung0 = smooth(1.0, 0.88, se);
    const dv = domeV(g, ad);
    const domeM = smooth(dv + 0.006, dv - 0.006, v);
    const hu = (u - A.heartCx) * A.HC + (v - A.heartCy) * A.HS;
    const hv = -(u - A.heartCx) * A.HS + (v - A.heartCy) * A.HC;
    const hx = hu / (hu > 0 ? A.heartRxL : A.heartRxR);
    const hy = hv / A.heartRy;
    const heart = smooth(1.06, 0.94, hx * hx + hy * hy);
    const knob = 0.028 * Math.exp(-sq(v - 0.32) / 0.0012) * (a > 0 ? 1 : 0.2);
    const mw = A.mediW + knob + 0.015 * smooth(0.3, 0.12, v) + A.mediWiden * smooth(0.12, 0.25, v) * smooth(0.55, 0.42, v) * (a > 0 ? 1 : 0.8);
    const medi = smooth(mw + 0.01, mw - 0.01, ad) * smooth(0.85, 0.6, v);
    b.se[k] = se;
    b.lung0[k] = lung0;
    b.dv[k] = dv;
    b.domeM[k] = domeM;
    b.heart[k] = heart;
    b.medi[k] = medi;
    b.lung[k] = lung0 * domeM * (1 - heart) * (1 - medi);
  }
}

function passTrackHeart(b: Buf, A: Anatomy, i: number): void {
  for (let k = 0; k < b.n; k++) if (b.heart[k] > 0.5 && b.V[k] < b.dv[k] + 0.02) b.track(i, k);
}

function passTrackMediastinum(b: Buf, A: Anatomy, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const v = b.V[k];
    if (b.medi[k] > 0.5 && v > 0.12 && v < A.heartCy - A.heartRy * 0.5 && Math.abs(b.U[k] - 0.5) > A.mediW) b.track(i, k);
  }
}

/** Pleural effusion: meniscus rising laterally, hides the costophrenic angle and the dome. */
function passEffusion(b: Buf, side: number, h: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    if ((u < 0.5 ? 0 : 1) !== side) continue;
    const ad = Math.abs(u - 0.5);
    const v = b.V[k];
    const ym = b.dv[k] - h - 0.55 * h * smooth(0.08, 0.38, ad) - 0.01;
    const F = smooth(ym - 0.018, ym + 0.022, v);
    b.lung[k] *= 1 - F;
    const bed = b.lung0[k] * b.domeM[k];
    b.I[k] += 0.03 * F * bed;
    if (F * bed * (1 - b.heart[k]) * (1 - b.medi[k]) > 0.5) b.track(i, k);
  }
}

/** Pneumothorax: lung collapsed towards the hilum, lucent rim without markings, visceral pleural line. */
function passPneumothorax(b: Buf, side: number, g: LungGeom, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    if ((u < 0.5 ? 0 : 1) !== side) continue;
    const seC = lungSE(g, Math.abs(u - 0.5), b.V[k]);
    const inner = smooth(1.0, 0.9, seC);
    const lung = b.lung[k];
    const rim = lung * (1 - inner);
    b.rim[k] = rim;
    if (rim > 0.5) b.track(i, k);
    b.I[k] += 0.12 * lung * Math.exp(-sq((seC - 0.95) / 0.03)) + 0.03 * lung * inner;
  }
}

/** Aerated lung: darker upper-lateral zones, vascular markings radiating from the hila. */
function passLungTexture(b: Buf, A: Anatomy): void {
  for (let k = 0; k < b.n; k++) {
    const lung = b.lung[k];
    if (lung <= 0) continue;
    const u = b.U[k];
    const v = b.V[k];
    const ad = Math.abs(u - 0.5);
    const g = u < 0.5 ? A.lungs[0] : A.lungs[1];
    const rim = b.rim[k];
    let I = b.I[k];
    I -= A.lungDark * lung * (0.9 + 0.25 * b.tn[k] - 0.35 * smooth(0.45, 0.8, v) - 0.15 * smooth(0.3, 0.05, Math.abs(ad - g.dc)));
    I -= 0.1 * rim;
    const q1 = 1 - Math.abs(2 * b.n1[k] - 1);
    const q1s = q1 * q1 * q1;
    const q2 = b.q2[k];
    const q2s = q2 * q2 * q2 * q2;
    const n2 = 1 - q2; // monotone stand-in for the second noise
    const ridge = 0.55 * q1s * q1s * (0.5 + n2) + 0.6 * q2s * q2s;
    const dh = b.dh[k];
    const fall = Math.exp(-dh / 0.14);
    const hilar = Math.exp(-(dh * dh) / 0.0022) * (0.6 + 0.8 * n2);
    I += lung * (1 - rim) * (0.15 * ridge * (0.3 + fall) + 0.1 * hilar);
    b.I[k] = I;
  }
}

/** A consolidation / pneumonia / opacity: cluster of gaussians with a ragged edge, air bronchograms. */
function passOpacity(b: Buf, blobs: Float64Array, dense: number, air: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const bed = b.lung0[k] * b.domeM[k] * (1 - b.medi[k]) * (1 - 0.6 * b.heart[k]);
    if (bed <= 0) continue;
    const u = b.U[k];
    const v = b.V[k];
    let val = 0;
    for (let j = 0; j < blobs.length; j += 4) {
      const du = u - blobs[j];
      const dvv = v - blobs[j + 1];
      val += blobs[j + 3] * Math.exp(-(du * du + dvv * dvv) / blobs[j + 2]);
    }
    val = Math.min(1, val) * (0.75 + 0.5 * b.n1[k]);
    let add = dense * val * bed;
    if (air > 0 && val > 0.55) {
      const q2 = b.q2[k];
      const q4 = q2 * q2 * q2 * q2;
      add -= 0.08 * q4 * q4 * q2 * q2 * bed; // air bronchograms
    }
    b.I[k] += add;
    if (val * bed > 0.45) b.track(i, k);
  }
}

/** Nodule (round) or mass (lobulated). */
function passLesion(b: Buf, cu: number, cv: number, r0: number, ph: number, mass: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const du = b.U[k] - cu;
    const dvv = b.V[k] - cv;
    const d = Math.sqrt(du * du + dvv * dvv);
    if (d > r0 * 1.4 + 0.01) continue;
    let rr = r0;
    if (mass > 0) {
      const th = Math.atan2(dvv, du);
      rr *= 1 + 0.12 * Math.sin(3 * th + ph) + 0.07 * Math.sin(5 * th - ph);
    }
    const m = smooth(rr + 0.006, rr - 0.006, d) * b.lung0[k] * b.domeM[k];
    b.I[k] += (mass > 0 ? 0.27 : 0.3) * m * (1 - (0.25 * d) / rr);
    if (m > 0.5) b.track(i, k);
  }
}

/** Edema: bilateral perihilar haze, Kerley B lines when more than mild. */
function passEdema(b: Buf, amt: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const bed = b.lung0[k] * b.domeM[k] * (1 - b.medi[k]) * (1 - 0.6 * b.heart[k]);
    if (bed <= 0) continue;
    const dh = b.dh[k];
    const m = Math.exp(-(dh * dh) / (2 * 0.11 * 0.11)) * (0.7 + 0.3 * b.tn[k]) * bed;
    b.I[k] += 0.17 * amt * m;
    const v = b.V[k];
    if (amt > 0.8 && v > 0.55 && Math.abs(b.U[k] - 0.5) > 0.3) {
      const sn = Math.abs(Math.sin(v * 260));
      const s4 = sn * sn * sn * sn;
      const s16 = s4 * s4 * s4 * s4;
      b.I[k] += 0.05 * b.lung[k] * s16 * s16;
    }
    if (m > 0.35) b.track(i, k);
  }
}

/** Plate-like atelectasis: thin dense band. */
function passAtelectasis(b: Buf, cu: number, cv: number, c: number, s: number, len: number, th: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const du = b.U[k] - cu;
    const dvv = b.V[k] - cv;
    const along = du * c + dvv * s;
    if (Math.abs(along) > len) continue;
    const across = -du * s + dvv * c;
    const m = smooth(len, len - 0.012, Math.abs(along)) * Math.exp(-sq(across / th)) * b.lung0[k] * b.domeM[k];
    b.I[k] += 0.25 * m;
    if (m > 0.4) b.track(i, k);
  }
}

/** Pleural thickening: band along the lateral wall or an apical cap. */
function passThickening(b: Buf, side: number, apical: number, th: number, i: number): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    if ((u < 0.5 ? 0 : 1) !== side) continue;
    const v = b.V[k];
    const se = b.se[k];
    const band = smooth(0.78 - th * 8, 0.9, se) * smooth(1.02, 0.97, se) * b.domeM[k];
    const zone = apical > 0.5 ? smooth(0.3, 0.22, v) : smooth(0.28, 0.36, v) * smooth(0.7, 0.62, v) * smooth(0.15, 0.25, Math.abs(u - 0.5));
    const m = band * zone;
    b.I[k] += 0.2 * m;
    if (m > 0.5) b.track(i, k);
  }
}

/** Spine, posterior and anterior ribs (optionally one broken), clavicles, humeral heads. */
function passBones(b: Buf, A: Anatomy, fracSide: number, fracRib: number, fracD: number, fracShift: number, fracI: number): void {
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    const v = b.V[k];
    const a = u - 0.5;
    const ad = Math.abs(a);
    const s = a < 0 ? 0 : 1;
    const body = b.body[k];
    const heart = b.heart[k];
    const hw = b.hw[k];
    let I = b.I[k];
    I += smooth(0.034, 0.028, ad) * body * (0.04 + 0.02 * Math.cos((v * 6.283) / 0.045)) * (1 - 0.5 * heart) * (1 - 0.5 * smooth(0.75, 0.85, v));
    if (ad > 0.02 && ad < hw + 0.01 && v > 0.05 && v < 0.95) {
      const bodyLat = smooth(hw + 0.005, hw - 0.03, ad);
      const dv = b.dv[k];
      const thorax = smooth(dv + 0.06, dv - 0.01, v);
      const lung0 = b.lung0[k];
      const curve = -0.3 * ad + 0.95 * ad * ad;
      const i0 = Math.round((v - A.ribV0 - curve) / A.ribSp);
      let rib = 0;
      for (let i = i0 - 2; i <= i0 + 1; i++) {
        if (i < 0 || i >= N_RIB) continue;
        let vr = A.ribV0 + (i + 0.035 * i * i) * A.ribSp + curve * (1 + 0.05 * (N_RIB - i));
        let gap = 1;
        if (i === fracRib && s === fracSide) {
          if (ad > fracD) vr += fracShift;
          gap = smooth(0.005, 0.011, Math.abs(ad - fracD));
          if (Math.abs(ad - fracD) < 0.028 && Math.abs(v - vr) < 0.028) b.track(fracI, k);
        }
        const t = (v - vr) / (A.ribTh * (1 + 0.4 * ad));
        if (t > 2.2 || t < -2.2) continue;
        const t2 = t * t;
        const band = Math.exp(-(t2 * t2)) * (0.75 + 0.25 * Math.exp(-sq(Math.abs(t) - 0.9) / 0.05));
        if (band * gap > rib) rib = band * gap;
      }
      I += 0.065 * rib * smooth(0.02, 0.06, ad) * bodyLat * (0.3 + 0.7 * lung0 * (1 - heart) * (1 - b.medi[k])) * thorax;
      // anterior ribs: descending medially, fading before the sternum
      const curveA = 0.32 * (0.42 - ad);
      const sp = A.ribSp * 1.05;
      const j0 = Math.round((v - A.antV0 - curveA) / sp);
      let ant = 0;
      for (let j = j0 - 1; j <= j0 + 1; j++) {
        if (j < 0 || j >= 6) continue;
        const t = (v - (A.antV0 + j * sp + curveA)) / (A.ribTh * 1.3);
        if (t > 2.2 || t < -2.2) continue;
        const t2 = t * t;
        const e = Math.exp(-(t2 * t2));
        if (e > ant) ant = e;
      }
      I += 0.04 * ant * smooth(0.12, 0.22, ad) * bodyLat * lung0 * thorax;
      if (ad < 0.34 && v < 0.3) {
        const vc = A.clavV - 0.14 * ad + 0.12 * ad * ad;
        const t = (v - vc) / 0.014;
        const t2 = t * t;
        I += 0.2 * Math.exp(-(t2 * t2)) * smooth(0.03, 0.05, ad) * smooth(0.34, 0.3, ad);
      }
    }
    const hd = hyp(ad - (hw - 0.02), v - 0.2);
    if (hd < 0.06) I += 0.13 * smooth(0.058, 0.05, hd) * smooth(0.12, 0.16, v);
    b.I[k] = I;
  }
}

/** Trachea and gastric bubble (air). */
function passAir(b: Buf, A: Anatomy): void {
  const gu = 0.62;
  const gv = A.lungs[1].dome + 0.07;
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    const v = b.V[k];
    const ad = Math.abs(u - 0.5);
    if (v < 0.4 && ad < 0.03) b.I[k] -= 0.12 * smooth(0.021, 0.013, ad) * smooth(0.34, 0.32, v) * smooth(0.02, 0.06, v);
    if (v > gv - 0.035 && v < gv + 0.04 && Math.abs(u - gu) < 0.06) b.I[k] -= 0.14 * smooth(1.05, 0.9, hyp((u - gu) / 0.055, (v - gv) / 0.035));
  }
}

/** A radio-opaque device: polyline (line, lead, tube walls) and optional rectangular generator. */
function passDevice(b: Buf, pts: Float64Array, th: number, walls: number, box: Float64Array, level: number, i: number): void {
  let u0 = 1e9;
  let v0 = 1e9;
  let u1 = -1e9;
  let v1 = -1e9;
  for (let j = 0; j < pts.length; j += 2) {
    u0 = Math.min(u0, pts[j]);
    u1 = Math.max(u1, pts[j]);
    v0 = Math.min(v0, pts[j + 1]);
    v1 = Math.max(v1, pts[j + 1]);
  }
  if (box.length === 4) {
    u0 = Math.min(u0, box[0]);
    v0 = Math.min(v0, box[1]);
    u1 = Math.max(u1, box[2]);
    v1 = Math.max(v1, box[3]);
  }
  const mg = th + 0.02;
  for (let k = 0; k < b.n; k++) {
    const u = b.U[k];
    const v = b.V[k];
    if (u < u0 - mg || u > u1 + mg || v < v0 - mg || v > v1 + mg) continue;
    const dd = polyDist(pts, u, v);
    let m = walls > 0 ? Math.exp(-sq((dd - th) / 0.005)) : smooth(th + 0.003, th - 0.002, dd);
    if (box.length === 4) {
      const inBox = smooth(box[0] - 0.003, box[0] + 0.003, u) * smooth(box[2] + 0.003, box[2] - 0.003, u) * smooth(box[1] - 0.003, box[1] + 0.003, v) * smooth(box[3] + 0.003, box[3] - 0.003, v);
      if (inBox > m) m = inBox;
    }
    if (m > 0.01) {
      const I = b.I[k];
      b.I[k] = I * (1 - m) + m * Math.max(I, level);
    }
    if (m > 0.5) b.track(i, k);
  }
}

function passDisplay(b: Buf, A: Anatomy, r: Rng, out: Uint8Array): void {
  const LUT = new Float64Array(1024);
  for (let k = 0; k < 1024; k++) LUT[k] = Math.pow(k / 1023, A.gamma);
  for (let k = 0; k < b.n; k++) {
    const x = clamp((b.I[k] - A.black) * A.gain, 0, 1) * 1023;
    const j = x | 0;
    const f = x - j;
    const g = j < 1023 ? LUT[j] + (LUT[j + 1] - LUT[j]) * f : LUT[1023];
    const o = g + A.noiseSd * GAUSS[(r.next() * 65536) | 0];
    out[k] = clamp(Math.round(o * 255), 0, 255);
  }
}

/**
 * Renders one frontal radiograph.
 * @param r the study's RNG (consumed for anatomy and acquisition jitter and noise)
 */
export function renderFrontal(r: Rng, findings: Finding[], size: number): RenderedImage {
  const S = size;
  const A = new Anatomy(r);
  const tissueNoise = new Noise(r, 6);
  const markNoise = new Noise(r, 22);
  const markNoise2 = new Noise(r, 40);
  const b = getBuf(S, findings.length);
  // findings that change the anatomy
  findings.forEach((f) => {
    if (f.kind === 'cardiomegaly') {
      A.heartRxL *= f.p.scale;
      A.heartRxR *= 0.5 + 0.5 * f.p.scale;
      A.heartRy *= 0.6 + 0.4 * f.p.scale;
    } else if (f.kind === 'widened_mediastinum') A.mediWiden = f.p.widen;
  });
  passCoords(b, A);
  passNoise(b, tissueNoise, markNoise, markNoise2, A);
  passAnatomy(b, A);
  const sideOf = (f: Finding) => (f.side === 'left' ? 1 : 0);
  const sgn = (f: Finding) => (f.side === 'right' ? -1 : 1);
  findings.forEach((f, i) => {
    if (f.kind === 'cardiomegaly') passTrackHeart(b, A, i);
    else if (f.kind === 'widened_mediastinum') passTrackMediastinum(b, A, i);
    else if (f.kind === 'pleural_effusion') passEffusion(b, sideOf(f), f.p.h, i);
  });
  findings.forEach((f, i) => {
    if (f.kind !== 'pneumothorax') return;
    const g = A.lungs[sideOf(f)];
    const k = f.p.gap;
    passPneumothorax(b, sideOf(f), { dc: g.dc - k / 2, vc: g.vc + k / 2, rx: g.rx - k / 2, ry: g.ry - k / 2, dome: g.dome }, i);
  });
  passLungTexture(b, A);
  findings.forEach((f, i) => {
    switch (f.kind) {
      case 'consolidation':
      case 'pneumonia':
      case 'opacity': {
        const br = new Rng(f.p.blobSeed);
        const cu = 0.5 + sgn(f) * (f.lobe!.d + f.p.dd);
        const cv = f.lobe!.v + f.p.dv;
        const blobs = new Float64Array(4 * f.p.nblob);
        for (let j = 0; j < f.p.nblob; j++) {
          const a = br.uniform(0, 6.283);
          const rr = br.uniform(0, f.p.R * 0.6);
          const sg = f.p.R * br.uniform(0.35, 0.6) * (f.kind === 'opacity' ? 1.25 : 1);
          blobs[4 * j] = cu + rr * Math.cos(a);
          blobs[4 * j + 1] = cv + rr * Math.sin(a) * 1.2;
          blobs[4 * j + 2] = 2 * sg * sg;
          blobs[4 * j + 3] = br.uniform(0.7, 1);
        }
        const dense = f.kind === 'opacity' ? 0.15 : 0.27;
        passOpacity(b, blobs, f.certain ? dense : dense * 0.75, f.kind === 'opacity' ? 0 : 1, i);
        break;
      }
      case 'nodule':
      case 'mass':
        passLesion(b, 0.5 + sgn(f) * (f.lobe!.d + f.p.dd), f.lobe!.v + f.p.dv, f.p.r, f.p.phase, f.kind === 'mass' ? 1 : 0, i);
        break;
      case 'edema':
        passEdema(b, f.p.amount * (f.certain ? 1 : 0.7), i);
        break;
      case 'atelectasis':
        passAtelectasis(b, 0.5 + sgn(f) * f.p.d, f.p.v, Math.cos(f.p.ang), Math.sin(f.p.ang), f.p.len, f.p.th, i);
        break;
      case 'pleural_thickening':
        passThickening(b, sideOf(f), f.p.apical, f.p.th, i);
        break;
      default:
        break;
    }
  });
  const fi = findings.findIndex((f) => f.kind === 'fracture');
  const fr = fi >= 0 ? findings[fi] : undefined;
  passBones(b, A, fr ? sideOf(fr) : -1, fr ? fr.p.rib : -1, fr ? fr.p.d : 0, fr ? fr.p.shift : 0, fi);
  passAir(b, A);
  const NOBOX = new Float64Array(0);
  findings.forEach((f, i) => {
    if (f.kind === 'pacemaker') {
      const gu = f.p.u;
      const gv = f.p.v;
      const sp = spline([[gu - 0.02, gv], [0.6, gv - 0.02], [0.5, 0.3], [0.47, 0.42], [0.5, A.heartCy], [0.56, A.heartCy + 0.05]], 0.0045);
      passDevice(b, sp.pts, sp.th, 0, Float64Array.from([gu - 0.035, gv - 0.024, gu + 0.035, gv + 0.024]), 0.97, i);
    } else if (f.kind === 'endotracheal_tube') {
      const sp = spline([[0.5, -0.02], [0.5, 0.1], [0.502, f.p.tip]], 0.009);
      passDevice(b, sp.pts, sp.th, 1, NOBOX, 0.85, i);
    } else if (f.kind === 'central_line') {
      const sp = spline([[0.12, 0.17], [0.26, 0.2], [0.4, 0.25], [0.465, 0.3], [0.47, f.p.tip]], 0.004);
      passDevice(b, sp.pts, sp.th, 0, NOBOX, 0.85, i);
    } else if (f.kind === 'enteric_tube') {
      const dx = f.p.dx;
      const sp = spline([[0.5 + dx, -0.02], [0.495 + dx, 0.3], [0.51, 0.6], [0.56, 0.78], [0.64, 0.83], [0.62, 0.87]], 0.005);
      passDevice(b, sp.pts, sp.th, 0, NOBOX, 0.8, i);
    }
  });
  const pixels = new Uint8Array(S * S);
  passDisplay(b, A, r, pixels);

  const boxes: FindingBox[] = [];
  findings.forEach((f, i) => {
    const bb = b.box;
    if (bb[4 * i + 2] < 0) return; // not visible at this size (rare): no box rather than a wrong one
    const out: FindingBox = {
      finding: f.kind,
      observation: FINDING_OBSERVATION[f.kind],
      certain: f.certain,
      box: [bb[4 * i], bb[4 * i + 1], bb[4 * i + 2] + 1, bb[4 * i + 3] + 1],
    };
    if (f.side) out.side = f.side;
    if (f.lobe) out.lobe = f.lobe.name;
    if (f.size) out.size = f.size;
    boxes.push(out);
  });
  return { width: S, height: S, pixels, boxes };
}
