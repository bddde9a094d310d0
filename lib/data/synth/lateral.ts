/**
 * A simpler lateral view for two-view (IU X-Ray style) studies: chest in profile (anterior on the
 * image left), superimposed lungs, heart anterior-inferior, spine posterior, sternum, diaphragm,
 * and the findings that show on a lateral (effusion in the posterior sulcus, cardiomegaly,
 * lung opacities and lesions by lobe height, devices as a dense line). No boxes are given for it.
 */
import type { Finding } from './plan.js';
import { Rng } from './rng.js';
import { GAUSS, Noise } from './render.js';

const clamp = (x: number, a: number, b: number) => (x < a ? a : x > b ? b : x);
function smooth(e0: number, e1: number, x: number): number {
  const t = clamp((x - e0) / (e1 - e0), 0, 1);
  return t * t * (3 - 2 * t);
}

export function renderLateral(r: Rng, findings: Finding[], size: number): { width: number; height: number; pixels: Uint8Array } {
  const S = size;
  const tilt = r.uniform(-0.05, 0.05);
  const scale = r.uniform(0.92, 1.02);
  const cx = 0.5 + r.uniform(-0.02, 0.02);
  const cy = 0.5 + r.uniform(-0.02, 0.02);
  const gain = r.uniform(1.1, 1.35);
  const noiseSd = r.uniform(0.012, 0.028);
  const ant = 0.2 + r.uniform(-0.02, 0.02); // anterior chest wall (u)
  const post = 0.84 + r.uniform(-0.02, 0.02); // posterior wall
  const cm = findings.find((f) => f.kind === 'cardiomegaly');
  const heartR = 0.15 * (cm ? 0.75 + 0.25 * cm.p.scale : 1);
  const eff = findings.filter((f) => f.kind === 'pleural_effusion');
  const effH = eff.reduce((m, f) => Math.max(m, f.p.h), 0);
  const blobs = findings
    .filter((f) => f.lobe && (f.kind === 'consolidation' || f.kind === 'pneumonia' || f.kind === 'opacity' || f.kind === 'nodule' || f.kind === 'mass'))
    .map((f) => {
      const upper = f.lobe!.name.includes('upper');
      const lower = f.lobe!.name.includes('lower');
      const u = upper ? 0.5 : lower ? 0.66 : 0.38; // lower lobes posterior, middle lobe/lingula anterior
      const round = f.kind === 'nodule' || f.kind === 'mass';
      return { u, v: f.lobe!.v + (f.p.dv ?? 0), rr: round ? f.p.r : f.p.R * 0.8, k: round ? 0.28 : f.kind === 'opacity' ? 0.12 : 0.2, round };
    });
  const devices = findings.some((f) => f.kind === 'pacemaker');
  const tex = new Noise(r, 24);
  const tex2 = new Noise(r, 7);
  const pixels = new Uint8Array(S * S);
  const G = GAUSS;
  const c = Math.cos(tilt);
  const s = Math.sin(tilt);
  for (let py = 0; py < S; py++) {
    for (let px = 0; px < S; px++) {
      const dx = ((px + 0.5) / S - cx) / scale;
      const dy = ((py + 0.5) / S - cy) / scale;
      const u = 0.5 + c * dx + s * dy;
      const v = 0.5 - s * dx + c * dy;
      // body in profile: neck on top, chest below
      const a0 = v < 0.2 ? 0.36 - 0.16 * smooth(0.02, 0.2, v) : ant;
      const body = smooth(a0 - 0.01, a0 + 0.01, u) * smooth(post + 0.01, post - 0.01, u) * smooth(-0.05, 0.03, v);
      let I = 0.03 + body * 0.55;
      // lungs: one superimposed field between sternum and spine, above the diaphragm
      const dome = 0.72 + 0.35 * (u - 0.5) * (u - 0.5) + 0.06 * smooth(0.5, 0.8, u);
      const lu = (u - 0.52) / 0.28;
      const lv = (v - 0.45) / 0.33;
      let lung = smooth(1.05, 0.9, lu * lu + (v < 0.45 ? lv * lv : 0)) * smooth(dome + 0.01, dome - 0.01, v) * smooth(0.1, 0.16, v);
      // heart: anterior, inferior, leaving the retrosternal clear space above it
      const hx = (u - 0.38) / (heartR * 1.15);
      const hy = (v - 0.62) / heartR;
      const hd = Math.sqrt(hx * hx + hy * hy);
      const heart = smooth(1.05, 0.95, hd);
      lung *= 1 - 0.8 * heart;
      // effusion: fluid in the posterior costophrenic sulcus with a meniscus
      if (effH > 0) {
        const ym = dome - effH - 0.4 * effH * smooth(0.5, 0.8, u);
        lung *= 1 - smooth(ym - 0.015, ym + 0.02, v);
      }
      const q = 1 - Math.abs(2 * tex.at(u, v) - 1);
      const q3 = q * q * q;
      I -= 0.33 * lung * (0.85 + 0.3 * tex2.at(u, v) - 0.25 * smooth(0.45, 0.75, v)) - 0.08 * lung * q3 * q3;
      if (lung > 0)
        for (const b of blobs) {
        const d = Math.sqrt((u - b.u) * (u - b.u) + (v - b.v) * (v - b.v));
        I += b.k * (b.round ? smooth(b.rr + 0.006, b.rr - 0.006, d) : Math.exp(-(d * d) / (2 * b.rr * b.rr))) * lung;
      }
      // spine: vertebral bodies posteriorly, with disc spaces
      if (u > 0.7 && u < 0.8) {
        const sp = smooth(0.7, 0.72, u) * smooth(0.8, 0.78, u);
        I += sp * (0.07 + 0.04 * Math.cos((v * 6.283) / 0.05)) * body;
      }
      // sternum
      I += 0.12 * smooth(ant + 0.035, ant + 0.02, u) * smooth(ant - 0.005, ant + 0.01, u) * smooth(0.2, 0.25, v) * smooth(0.62, 0.55, v);
      if (devices) {
        const gd = Math.abs(u - (ant + 0.03)) + Math.abs(v - 0.22) * 1.4;
        if (gd < 0.03) I = Math.max(I, 0.95);
      }
      const out = clamp((I - 0.03) * gain, 0, 1) + noiseSd * G[(r.next() * 65536) | 0];
      pixels[py * S + px] = clamp(Math.round(out * 255), 0, 255);
    }
  }
  return { width: S, height: S, pixels };
}
