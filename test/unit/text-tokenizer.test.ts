import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer, cleanReportIuXray, cleanReportMimicCxr, cleanReportFixed, pySplit } from '../../lib/text/tokenizer.js';

// Expected strings produced by running R2Gen's own clean_report_iu_xray / clean_report_mimic_cxr
// (modules/tokenizers.py, copied verbatim) under CPython 3.
const R2GEN_CASES: Array<{ input: string; iu: string; mimic: string }> = [
  {
    "input": "The heart is normal in size. The mediastinum is unremarkable. The lungs are clear.",
    "iu": "the heart is normal in size . the mediastinum is unremarkable . the lungs are clear .",
    "mimic": "the heart is normal in size . the mediastinum is unremarkable . the lungs are clear ."
  },
  {
    "input": "1. No acute cardiopulmonary abnormality. 2. Stable 5:30 nodule; <unchanged> @ site = ok? Yes!",
    "iu": "no acute cardiopulmonary abnormality . stable 530 nodule unchanged  site  ok yes .",
    "mimic": "no acute cardiopulmonary abnormality . stable 530 nodule unchanged  site  ok yes ."
  },
  {
    "input": "Heart size normal.. Lungs clear... No effusion.  ",
    "iu": "heart size normal . lungs clear . no effusion .",
    "mimic": "heart size normal . lungs clear . no effusion ."
  },
  {
    "input": "XXXX XXXX. T12-L1 \"old\" fracture (healed) [see prior] {x} a/b c\\d it's 3.5 cm. . . End",
    "iu": "xxxx xxxx . t12-l1 old fracture healed see prior x ab cd its 35 cm .  .  . end .",
    "mimic": "xxxx xxxx . t12-l1 old fracture healed see prior x ab cd its 35 cm .  .  . end ."
  },
  {
    "input": "FINDINGS:\nThe ET tube  is 4.5 cm above the carina.\n\nIMPRESSION:\n1. Left  lower lobe__ pneumonia. 2. Small effusion. 11. x",
    "iu": "findings\nthe et tube  is 45 cm above the carina\n\nimpression\nleft  lower lobe pneumonia . small effusion . 1x .",
    "mimic": "findings the et tube is 45 cm above the carina . impression left lower lobe pneumonia . small effusion . 1x ."
  },
  {
    "input": "",
    "iu": " .",
    "mimic": " ."
  },
  {
    "input": "   .   ",
    "iu": " .",
    "mimic": " ."
  },
  {
    "input": "No pneumothorax.\tSmall  left effusion. Trace fluid\u001cend",
    "iu": "no pneumothorax\tsmall  left effusion trace fluid\u001cend .",
    "mimic": "no pneumothorax\tsmall left effusion trace fluid\u001cend ."
  },
  {
    "input": "Übergroß Heart; naïve ÉTAT 10% 3^2 a&b c+d e_f g*h",
    "iu": "übergroß heart naïve état 10 32 ab cd ef gh .",
    "mimic": "übergroß heart naïve état 10 32 ab cd ef gh ."
  }
];
const TRAIN = ["The heart is normal. No effusion.", "The heart is enlarged. Small effusion.", "No effusion. Heart is normal.", "Zebra 5:30 z-line is normal.", "normal normal"];
const VOCAB_T2 = [".", "<unk>", "effusion", "heart", "is", "no", "normal", "the"];

describe('R2Gen-compatible cleaning', () => {
  R2GEN_CASES.forEach((c, i) => {
    it(`case ${i} matches CPython output (iu_xray and mimic_cxr)`, () => {
      expect(cleanReportIuXray(c.input)).toBe(c.iu);
      expect(cleanReportMimicCxr(c.input)).toBe(c.mimic);
    });
  });
  it('keeps the quirks: :-[ range deletes ;<=>?@, keeps hyphens, 5:30 -> 530, empty sentences kept', () => {
    expect(cleanReportIuXray('at 5:30 a <b> = c? d@e; t12-l1')).toBe('at 530 a b  c de t12-l1 .');
    // empty sentence is not filtered: a lone " . " survives in the string, split() swallows the spaces
    expect(cleanReportIuXray('a. . b')).toBe('a .  . b .');
    expect(pySplit(cleanReportIuXray('a. . b'))).toEqual(['a', '.', '.', 'b', '.']);
    expect(cleanReportIuXray('')).toBe(' .');
  });
});

describe('Tokenizer', () => {
  it('builds a sorted training-split vocabulary with a count threshold and <unk>', () => {
    const tok = Tokenizer.build(TRAIN, { threshold: 2 });
    expect(tok.vocab).toEqual(VOCAB_T2);
    expect(tok.vocabSize).toBe(VOCAB_T2.length);
    expect(tok.tokenToId(VOCAB_T2[0])).toBe(1);
    expect(tok.tokenToId('never-seen')).toBe(tok.tokenToId('<unk>'));
  });
  it('encodes with BOS=EOS=0, truncates like R2Gen, decodes up to the first 0', () => {
    const tok = Tokenizer.build(TRAIN, { threshold: 1, maxLength: 6 });
    const full = tok.encode('The heart is normal. No effusion.', 100);
    expect(full[0]).toBe(0);
    expect(full[full.length - 1]).toBe(0);
    expect(full.length).toBe(2 + 8);
    const cut = tok.encode('The heart is normal. No effusion.');
    expect(cut).toEqual(full.slice(0, 6));
    expect(tok.decode(full.slice(1))).toBe('the heart is normal . no effusion .');
    expect(tok.decode([tok.tokenToId('heart'), 0, tok.tokenToId('is')])).toBe('heart');
    expect(tok.decode(full)).toBe('');
    const b = tok.encodeBatch(['the heart', 'no effusion is seen today'], { maxLength: 100 });
    expect(b.shape).toEqual([2, 8]);
    expect(Array.from(b.data.slice(0, 8))).toEqual([...tok.encode('the heart', 100), 0, 0, 0]);
    expect(Array.from(b.mask.slice(0, 8))).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
  });
  it('clean mode fixes the bugs', () => {
    expect(cleanReportFixed('1. Stable 5:30 nodule, 1.5 cm; T12-L1 <ok>. . 2. Done!')).toBe(
      'stable 5:30 nodule 1.5 cm . t12-l1 ok . done .',
    );
    const tok = Tokenizer.build(['No effusion. No effusion.'], { mode: 'clean', threshold: 1 });
    expect(tok.clean('No effusion..')).toBe('no effusion .');
  });
  it('round-trips through JSON and files', () => {
    const tok = Tokenizer.build(TRAIN, { threshold: 1, dataset: 'mimic_cxr', maxLength: 40 });
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
    expect(back.toJSON()).toEqual(tok.toJSON());
    expect(back.encode('the heart is enlarged')).toEqual(tok.encode('the heart is enlarged'));
    const dir = mkdtempSync(join(tmpdir(), 'radkit-tok-'));
    const p = join(dir, 'tok.json');
    tok.save(p);
    expect(Tokenizer.load(p).toJSON()).toEqual(tok.toJSON());
    writeFileSync(join(dir, 'bad.json'), '{not json');
    expect(() => Tokenizer.load(join(dir, 'bad.json'))).toThrow(/bad\.json is not valid JSON/);
    expect(() => Tokenizer.load(join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json/);
    expect(() => Tokenizer.fromJSON({ format: 'radkit-tokenizer', version: 1, vocab: ['a'] })).toThrow(/<unk>/);
    expect(() => Tokenizer.fromJSON({})).toThrow(/format/);
  });
  it('rejects bad annotation input with a clear message', () => {
    expect(() => Tokenizer.fromAnnotation({ train: [{ report: 'ok' }, {} as { report: string }] })).toThrow(/train\[1\]/);
  });
});
