// Augmentation options, sentence shuffling and the registry's augment field (no native addon needed).
import { describe, expect, it } from 'vitest';
import { checkAugmentOptions, imageSeed, nativeAugmentConfig, sentences, shuffleSentences } from '../../lib/data/augment.js';
import { registerModelKind, unregisterModelKind } from '../../lib/models/registry.js';
import { ArgumentError } from '../../lib/errors.js';

describe('augmentation options', () => {
  it('fills defaults; flips are off unless asked for; bad fields are named', () => {
    const c = nativeAugmentConfig({ resizedCrop: {}, affine: { degrees: 5 }, blur: {}, contrast: 0.2 });
    expect(c).toMatchObject({ cropP: 1, cropScaleMin: 0.75, affineP: 1, degrees: 5, blurP: 0.5, contrast: 0.2, brightness: 0, hflip: 0 });
    expect(nativeAugmentConfig({})).toMatchObject({ cropP: 0, affineP: 0, blurP: 0, hflip: 0 });
    expect(() => nativeAugmentConfig({ hflip: 2 })).toThrow(/hflip must be a probability/);
    expect(() => nativeAugmentConfig({ resizedCrop: { scale: [0.9, 0.5] } })).toThrow(/resizedCrop.scale must be \[min, max\]/);
    expect(() => nativeAugmentConfig({ rotate: 3 } as never)).toThrow(/unknown image option 'rotate'/);
    expect(() => checkAugmentOptions({ text: { shuffle: 1 } } as never)).toThrow(ArgumentError);
    expect(() => checkAugmentOptions({ images: {} } as never)).toThrow(/unknown option 'images'/);
  });
  it('sentence shuffling: seeded, a permutation of the sentences, off at p = 0', () => {
    const r = 'the heart is normal in size. no pleural effusion. lungs are clear. no pneumothorax.';
    expect(sentences(r)).toHaveLength(4);
    expect(shuffleSentences(r, 0, 1, 0, 'a')).toBe(r);
    const outs = Array.from({ length: 20 }, (_, e) => shuffleSentences(r, 1, 1, e, 'a'));
    for (const o of outs) expect(sentences(o).sort()).toEqual(sentences(r).sort());
    expect(new Set(outs).size).toBeGreaterThan(3);
    expect(shuffleSentences(r, 1, 1, 3, 'a')).toBe(outs[3]);
    expect(imageSeed(1, 2, 'x', 0)).toBe(imageSeed(1, 2, 'x', 0));
    expect(imageSeed(1, 2, 'x', 0)).not.toBe(imageSeed(1, 2, 'x', 1));
  });
  it('a model kind declares its augmentations in the registry; bad ones are refused at registration', () => {
    const base = { name: 'aug-probe', summary: 's', task: 'generation' as const, presets: ['small'], metric: 'bleu4', configDefaults: () => ({}), create: () => ({}) as never };
    expect(() => registerModelKind({ ...base, augment: { image: { blur: { p: 3 } } } })).toThrow(/blur.p must be a probability/);
    const k = registerModelKind({ ...base, augment: { image: { resizedCrop: {} }, text: { shuffleSentences: 0.5 } } });
    expect(k.augment?.text?.shuffleSentences).toBe(0.5);
    expect(unregisterModelKind('aug-probe')).toBe(true);
  });
});
