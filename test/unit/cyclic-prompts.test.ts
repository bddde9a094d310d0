// AdaMatch-Cyclic prompts and joint vocabulary: the rendered prompts equal the paper's Figs. 3-4
// (their text typed here with the printed column's line breaks joined), ids of image tokens are
// code + text vocabulary size, and the specials layout for a word-vocabulary LM.
// Image metrics: PSNR and SSIM against values computed by hand.
import { describe, expect, it } from 'vitest';
import { encodePrompt, imagePrompt, JointVocabulary, renderPrompt, reportPrompt, SpecialsVocabulary, specialsPrompt } from '../../lib/models/cyclic-prompts.js';
import { psnr, ssim } from '../../lib/metrics/image.js';

const FIG3 =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n' +
  '### Instruction: Utilize the entered chest X-ray images to generate comprehensive free-text radiology reports.\n' +
  '### Input: 66, 260, 379, 555, 304, 905\n' +
  '### Keywords: Pleural effusions, tube\n' +
  '### Response: A pigtail catheter is placed in the lower right chest .';
const FIG4 =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n' +
  '### Instruction: Create an AP chest X-ray image that matches the free-text radiology reports.\n' +
  '### Input: A pigtail catheter is placed in the lower right chest .\n' +
  '### Keypatches: 122, 680, 978\n' +
  '### Response: 719, 421, 551, 421, 742, 905';

describe('AdaMatch-Cyclic prompts', () => {
  it('render as the paper prints them (Figs. 3-4), byte for byte', () => {
    const report = 'A pigtail catheter is placed in the lower right chest .';
    expect(renderPrompt(reportPrompt([66, 260, 379, 555, 304, 905], ['Pleural effusions', 'tube'])) + report).toBe(FIG3);
    expect(renderPrompt(imagePrompt(report, [122, 680, 978])) + [719, 421, 551, 421, 742, 905].join(', ')).toBe(FIG4);
    // Without hints the section is left out (Table 7's first row).
    expect(renderPrompt(reportPrompt([1, 2], null))).not.toContain('Keywords');
    expect(renderPrompt(imagePrompt('x', null))).toBe(FIG4.split('\n')[0] + '\n### Instruction: Create an AP chest X-ray image that matches the free-text radiology reports.\n### Input: x\n### Response: ');
  });

  it('offsets image codes by the text vocabulary size and encodes text through the tokenizer', () => {
    const v = new JointVocabulary(50280, 1024);
    expect(v.size).toBe(51304);
    expect(v.imageToken(0)).toBe(50280);
    expect(v.imageToken(1023)).toBe(51303);
    expect(v.codeOf(50905)).toBe(625);
    expect(v.isImageToken(50279)).toBe(false);
    expect(() => v.imageToken(1024)).toThrow(/outside \[0, 1024\)/);
    expect(() => v.codeOf(5)).toThrow(/not an image token/);
    const text = (s: string) => [...s].map((c) => c.charCodeAt(0)); // a stand-in byte tokenizer
    const ids = encodePrompt(reportPrompt([3, 7], ['a']), text, v);
    const head = text(renderPrompt(reportPrompt([], ['a'])).split('### Input: ')[0] + '### Input: ');
    expect(ids.slice(0, head.length)).toEqual(head);
    expect(ids.slice(head.length, head.length + 2)).toEqual([50283, 50287]);
    expect(ids.slice(head.length + 2)).toEqual(text('\n### Keywords: a\n### Response: '));
    expect(() => encodePrompt([{ text: 'x' }], () => [50280], v)).toThrow(/outside the text vocabulary/);
  });

  it('specials layout: [0][words][task tokens][codes]', () => {
    const v = new SpecialsVocabulary(100, 16); // radkit word ids 0..99
    expect(v.task('<i2r>')).toBe(100);
    expect(v.task('<resp>')).toBe(105);
    expect(v.imageToken(0)).toBe(106);
    expect(v.size).toBe(122);
    const words = (s: string) => s.split(' ').map((w) => w.length);
    expect(specialsPrompt('report', v, { codes: [0, 15] }, ['ab', 'c'], words)).toEqual([100, 102, 106, 121, 103, 2, 1, 105]);
    expect(specialsPrompt('report', v, { codes: [1] }, null, words)).toEqual([100, 102, 107, 105]);
    expect(specialsPrompt('image', v, { report: 'abc d' }, [2, 3], words)).toEqual([101, 3, 1, 104, 102, 108, 109, 105, 102]);
    expect(specialsPrompt('image', v, { report: 'abc' }, null, words)).toEqual([101, 3, 105, 102]);
  });
});

describe('image metrics', () => {
  it('PSNR is 10 log10(1 / MSE)', () => {
    expect(psnr([0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1])).toBeCloseTo(20, 10);
    expect(psnr([0.5], [0.5])).toBe(100);
  });
  it('SSIM: 1 for equal images, the closed form for a constant shift of a constant image', () => {
    const H = 12, W = 13;
    const x = Array.from({ length: H * W }, (_, i) => ((i * 37) % 11) / 10);
    expect(ssim(x, x, H, W)).toBeCloseTo(1, 12);
    // Constant images a and b: variances 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    const a = 0.3, b = 0.5, C1 = 1e-4;
    expect(ssim(new Array(H * W).fill(a), new Array(H * W).fill(b), H, W)).toBeCloseTo((2 * a * b + C1) / (a * a + b * b + C1), 10);
    const noisy = x.map((v, i) => v + (i % 2 ? 0.2 : -0.2));
    expect(ssim(x, noisy, H, W)).toBeLessThan(0.9);
    expect(() => ssim([1], [1], 1, 1)).toThrow(/at least 11 x 11/);
  });
});
