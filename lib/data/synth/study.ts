/** One SynthCXR study, end to end: plan, report, labels, images, boxes. Pure function of (seed, split, index). */
import { PNG } from 'pngjs';
import type { ReportLabels } from '../../text/chexpert.js';
import { planStudy } from './plan.js';
import { renderFrontal, type FindingBox } from './render.js';
import { renderLateral } from './lateral.js';
import { Rng, hashSeed } from './rng.js';

export type Split = 'train' | 'val' | 'test';

export interface StudyRecord {
  id: string;
  split: Split;
  report: string;
  labels: ReportLabels;
  /** Boxes on the frontal view (image_path[0]). */
  boxes: FindingBox[];
  /** Relative image paths, frontal first. */
  image_path: string[];
}

export interface RenderedStudy extends StudyRecord {
  /** PNG file contents, same order as image_path. */
  pngs: Buffer[];
}

export function studyId(split: Split, index: number): string {
  return `syn-${split}-${String(index).padStart(5, '0')}`;
}

/** 8-bit grey PNG bytes (deterministic: pngjs + zlib at fixed settings). */
export function encodeGreyPng(width: number, height: number, pixels: Uint8Array): Buffer {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8, deflateLevel: 6, deflateStrategy: 3 });
}

export function renderStudy(seed: number, split: Split, index: number, size: number, views: 1 | 2): RenderedStudy {
  const r = new Rng(hashSeed('synthcxr-v1', seed, split, index));
  const plan = planStudy(r);
  const front = renderFrontal(r, plan.findings, size);
  const id = studyId(split, index);
  const pngs = [encodeGreyPng(front.width, front.height, front.pixels)];
  const image_path = [`${id}/0.png`];
  if (views === 2) {
    const lat = renderLateral(new Rng(hashSeed('synthcxr-v1-lateral', seed, split, index)), plan.findings, size);
    pngs.push(encodeGreyPng(lat.width, lat.height, lat.pixels));
    image_path.push(`${id}/1.png`);
  }
  return { id, split, report: plan.report, labels: plan.labels, boxes: front.boxes, image_path, pngs };
}
