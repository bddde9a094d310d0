import { describe, expect, it } from 'vitest';
import { buildTextualCodebook, ENTITY_GROUPS, extractEntities, type EntityGroup } from '../../lib/text/entities.js';
import * as text from '../../lib/text/index.js';
import { labelSentence, splitSentences } from '../../lib/text/labeler.js';
import { planStudy, Rng, hashSeed, type FindingKind, type StudyPlan } from '../../lib/data/synth/index.js';
import { ArgumentError } from '../../lib/errors.js';

const S: EntityGroup = 'biological_structure';
const D: EntityGroup = 'detailed_description';
const X: EntityGroup = 'disease_disorder';
const Y: EntityGroup = 'sign_symptom';

/** [canonical text, group, surface text] of each entity, in order. */
function ents(s: string): Array<[string, EntityGroup, string]> {
  return extractEntities(s).map((e) => [e.text, e.group, s.slice(e.start, e.end)]);
}

describe('extractEntities', () => {
  // Hand-written MIMIC-CXR / IU X-Ray style sentences and the exact entities expected.
  const CASES: Array<[string, Array<[string, EntityGroup, string]>]> = [
    [
      'Small bilateral pleural effusions with bibasilar atelectasis.',
      [
        ['small', D, 'Small'],
        ['bilateral', D, 'bilateral'],
        ['pleural effusion', X, 'pleural effusions'],
        ['bibasilar', D, 'bibasilar'],
        ['atelectasis', X, 'atelectasis'],
      ],
    ],
    [
      'Right lower lobe opacity concerning for pneumonia.',
      [
        ['right lower lobe', S, 'Right lower lobe'],
        ['opacity', Y, 'opacity'],
        ['pneumonia', X, 'pneumonia'],
      ],
    ],
    [
      'The cardiac silhouette is mildly enlarged.',
      [
        ['cardiac silhouette', S, 'cardiac silhouette'],
        ['mild', D, 'mildly'],
        ['enlarged', D, 'enlarged'],
      ],
    ],
    [
      'Sharp costophrenic angles. No pneumothorax.',
      [
        ['sharp', D, 'Sharp'],
        ['costophrenic angle', S, 'costophrenic angles'],
        ['pneumothorax', X, 'pneumothorax'],
      ],
    ],
    [
      'Endotracheal tube terminates 4 cm above the carina.',
      [
        ['endotracheal tube', S, 'Endotracheal tube'],
        ['carina', S, 'carina'],
      ],
    ],
    [
      'Massive left-sided effusion; the lungs are hyperinflated, no mass.',
      [
        ['massive', D, 'Massive'],
        ['left', D, 'left-sided'],
        ['effusion', X, 'effusion'],
        ['lung', S, 'lungs'],
        ['hyperinflation', Y, 'hyperinflated'],
        ['mass', X, 'mass'],
      ],
    ],
    [
      'Patient with shortness of breath, chest pain, cough and fever.',
      [
        ['shortness of breath', Y, 'shortness of breath'],
        ['chest pain', Y, 'chest pain'],
        ['cough', Y, 'cough'],
        ['fever', Y, 'fever'],
      ],
    ],
    [
      'Stable mild cardiomegaly. Hila are normal. Opacities at both apices and in the lung bases.',
      [
        ['stable', D, 'Stable'],
        ['mild', D, 'mild'],
        ['cardiomegaly', X, 'cardiomegaly'],
        ['hilum', S, 'Hila'],
        ['normal', D, 'normal'],
        ['opacity', Y, 'Opacities'],
        ['apex', S, 'apices'],
        ['lung base', S, 'lung bases'],
      ],
    ],
    [
      'Multiple nondisplaced right rib fractures. Masses and nodules.',
      [
        ['multiple', D, 'Multiple'],
        ['nondisplaced', D, 'nondisplaced'],
        ['right', D, 'right'],
        ['rib', S, 'rib'],
        ['fracture', X, 'fractures'],
        ['mass', X, 'Masses'],
        ['nodule', X, 'nodules'],
      ],
    ],
    [
      'ET tube and right IJ central line with tip in the SVC; moderate-sized pulmonary edema.',
      [
        ['endotracheal tube', S, 'ET tube'],
        ['right', D, 'right'],
        ['internal jugular vein', S, 'IJ'],
        ['central venous catheter', S, 'central line'],
        ['superior vena cava', S, 'SVC'],
        ['moderate', D, 'moderate-sized'],
        ['pulmonary edema', X, 'pulmonary edema'],
      ],
    ],
    [
      'Blunting of the left costophrenic angle and interstitial pulmonary edema with Kerley B lines.',
      [
        ['blunting', Y, 'Blunting'],
        ['left', D, 'left'],
        ['costophrenic angle', S, 'costophrenic angle'],
        ['interstitial edema', X, 'interstitial pulmonary edema'],
        ['kerley b line', Y, 'Kerley B lines'],
      ],
    ],
  ];
  for (const [sentence, expected] of CASES) {
    it(sentence, () => {
      expect(ents(sentence)).toEqual(expected);
    });
  }

  it('prefers the longest phrase over its words', () => {
    expect(ents('right lower lobe').map((e) => e[0])).toEqual(['right lower lobe']);
    expect(ents('pleural effusion').map((e) => e[0])).toEqual(['pleural effusion']);
    expect(ents('chest pain').map((e) => e[0])).toEqual(['chest pain']);
    expect(ents('chest wall pain').map((e) => e[0])).toEqual(['chest wall', 'pain']);
    expect(ents('mass effect').map((e) => e[1])).toEqual([Y]);
  });

  it('matches whole words only', () => {
    expect(ents('massive')).toEqual([['massive', D, 'massive']]);
    expect(ents('Massachusetts painting fevers')).toEqual([['fever', Y, 'fevers']]);
    expect(ents('pneumothoraxes')).toEqual([['pneumothorax', X, 'pneumothoraxes']]);
    expect(ents('reflection infectious')).toEqual([]);
    expect(ents('subclinical')).toEqual([]);
  });

  it('does not join a phrase across punctuation, but does across a hyphen or line break', () => {
    expect(ents('right, lower lobe').map((e) => e[0])).toEqual(['right', 'lower lobe']);
    expect(ents('pleural. Effusion').map((e) => e[0])).toEqual(['pleura', 'effusion']);
    expect(ents('right\n  lower lobe').map((e) => e[0])).toEqual(['right lower lobe']);
    expect(ents('plate-like atelectasis').map((e) => e[0])).toEqual(['plate-like', 'atelectasis']);
    expect(ents('platelike atelectasis').map((e) => e[0])).toEqual(['plate-like', 'atelectasis']);
  });

  it('normalises plurals and spellings to one canonical form', () => {
    const canon = (s: string) => extractEntities(s).map((e) => e.text);
    expect(canon('effusions effusion')).toEqual(['effusion', 'effusion']);
    expect(canon('opacities opacity')).toEqual(['opacity', 'opacity']);
    expect(canon('lungs lung')).toEqual(['lung', 'lung']);
    expect(canon('pneumothoraces pneumothorax PTX')).toEqual(['pneumothorax', 'pneumothorax', 'pneumothorax']);
    expect(canon('metastases atelectasis atelectases')).toEqual(['metastasis', 'atelectasis', 'atelectasis']);
    expect(canon('costophrenic sulci')).toEqual(['costophrenic angle']);
    expect(canon('NG tube, nasogastric tube')).toEqual(['nasogastric tube', 'nasogastric tube']);
  });

  it('keeps negated and hedged mentions', () => {
    expect(extractEntities('No pleural effusion or pneumothorax. Cannot exclude pneumonia.').map((e) => e.text)).toEqual([
      'pleural effusion',
      'pneumothorax',
      'pneumonia',
    ]);
  });

  it('reports offsets into the original string', () => {
    const s = 'Findings:\n  Moderate RIGHT  pleural effusions.';
    for (const e of extractEntities(s)) expect(s.slice(e.start, e.end).toLowerCase().replace(/\s+/g, ' ')).toMatch(/^(moderate|right|pleural effusions)$/);
    expect(extractEntities(s).map((e) => [e.start, e.end])).toEqual([
      [12, 20],
      [21, 26],
      [28, 45],
    ]);
  });

  it('groups entities by kind', () => {
    const g = (w: string) => {
      const e = extractEntities(w);
      expect(e).toHaveLength(1);
      return e[0].group;
    };
    for (const w of ['lung', 'heart', 'mediastinum', 'hilum', 'diaphragm', 'costophrenic angle', 'rib', 'spine', 'pleura', 'aorta', 'trachea', 'lingula'])
      expect(g(w), w).toBe(S);
    // support devices are filed with structures (documented choice in entities.ts)
    for (const w of ['endotracheal tube', 'pacemaker', 'PICC line', 'chest tube', 'sternotomy wires']) expect(g(w), w).toBe(S);
    for (const w of ['mild', 'small', 'moderate', 'large', 'bilateral', 'left', 'right', 'stable', 'increased', 'patchy', 'linear', 'enlarged'])
      expect(g(w), w).toBe(D);
    for (const w of ['pneumonia', 'effusion', 'pneumothorax', 'edema', 'atelectasis', 'cardiomegaly', 'consolidation', 'fracture', 'nodule', 'mass', 'emphysema'])
      expect(g(w), w).toBe(X);
    for (const w of ['opacity', 'shortness of breath', 'chest pain', 'cough', 'fever', 'blunting', 'pain']) expect(g(w), w).toBe(Y);
  });

  it('returns nothing for text without entities and rejects non-strings', () => {
    expect(extractEntities('')).toEqual([]);
    expect(extractEntities('Comparison is made to the prior study of 2021.')).toEqual([]);
    expect(() => extractEntities(undefined as unknown as string)).toThrow(ArgumentError);
  });

  it('is exported from lib/text', () => {
    expect(text.extractEntities).toBe(extractEntities);
    expect(text.buildTextualCodebook).toBe(buildTextualCodebook);
    expect(text.ENTITY_GROUPS).toEqual(['biological_structure', 'detailed_description', 'disease_disorder', 'sign_symptom']);
  });
});

describe('buildTextualCodebook', () => {
  const REPORTS = [
    'Small left pleural effusion. Small right effusion.',
    'Large right pneumothorax. No effusion.',
    'Left lower lobe opacity. Cough and fever.',
    'Heart size is normal. The lungs are clear.',
  ];

  it('counts mentions per group and sorts by count, then alphabetically', () => {
    const cb = buildTextualCodebook(REPORTS);
    expect(cb.groups.detailed_description).toEqual([
      { text: 'right', count: 2 },
      { text: 'small', count: 2 },
      { text: 'clear', count: 1 },
      { text: 'large', count: 1 },
      { text: 'left', count: 1 },
      { text: 'normal', count: 1 },
    ]);
    expect(cb.groups.disease_disorder).toEqual([
      { text: 'effusion', count: 2 },
      { text: 'pleural effusion', count: 1 },
      { text: 'pneumothorax', count: 1 },
    ]);
    expect(cb.groups.biological_structure).toEqual([
      { text: 'heart', count: 1 },
      { text: 'left lower lobe', count: 1 },
      { text: 'lung', count: 1 },
    ]);
    expect(cb.groups.sign_symptom).toEqual([
      { text: 'cough', count: 1 },
      { text: 'fever', count: 1 },
      { text: 'opacity', count: 1 },
    ]);
    expect(cb.keywords).toEqual([
      'heart',
      'left lower lobe',
      'lung',
      'right',
      'small',
      'clear',
      'large',
      'left',
      'normal',
      'effusion',
      'pleural effusion',
      'pneumothorax',
      'cough',
      'fever',
      'opacity',
    ]);
  });

  it('keeps the top kappa0 of each group', () => {
    const cb = buildTextualCodebook(REPORTS, 2);
    expect(cb.groups.detailed_description.map((e) => e.text)).toEqual(['right', 'small']);
    expect(cb.groups.disease_disorder.map((e) => e.text)).toEqual(['effusion', 'pleural effusion']);
    expect(cb.groups.sign_symptom.map((e) => e.text)).toEqual(['cough', 'fever']);
    expect(cb.keywords).toEqual(['heart', 'left lower lobe', 'right', 'small', 'effusion', 'pleural effusion', 'cough', 'fever']);
    const one = buildTextualCodebook(REPORTS, 1);
    expect(one.keywords).toEqual(['heart', 'right', 'effusion', 'cough']);
    const none = buildTextualCodebook(REPORTS, 0);
    expect(none.keywords).toEqual([]);
    for (const g of ENTITY_GROUPS) expect(none.groups[g]).toEqual([]);
  });

  it('is deterministic, order-independent and accepts any iterable', () => {
    const a = buildTextualCodebook(REPORTS);
    const b = buildTextualCodebook([...REPORTS].reverse());
    function* gen() {
      yield* REPORTS;
    }
    const c = buildTextualCodebook(gen());
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(c)).toBe(JSON.stringify(a));
    expect(buildTextualCodebook([]).keywords).toEqual([]);
  });

  it('validates kappa0', () => {
    expect(() => buildTextualCodebook(REPORTS, -1)).toThrow(ArgumentError);
    expect(() => buildTextualCodebook(REPORTS, 1.5)).toThrow(ArgumentError);
    expect(() => buildTextualCodebook(REPORTS, Number.NaN)).toThrow(ArgumentError);
  });
});

describe('SynthCXR reports', () => {
  const plans: StudyPlan[] = [];
  for (let i = 0; i < 200; i++) plans.push(planStudy(new Rng(hashSeed('synthcxr-v1', 7, 'train', i))));
  const reports = plans.map((p) => p.report);
  const codebook = buildTextualCodebook(reports);

  // The keyword (and group) each drawn finding must contribute to the codebook.
  const EXPECTED: Record<FindingKind, Array<[string, EntityGroup]>> = {
    cardiomegaly: [['cardiomegaly', X]],
    widened_mediastinum: [['widened', D]],
    pleural_effusion: [['pleural effusion', X]],
    pneumothorax: [['pneumothorax', X]],
    consolidation: [['consolidation', X]],
    pneumonia: [['pneumonia', X]],
    opacity: [['opacity', Y]],
    nodule: [['nodule', X]],
    mass: [['mass', X]],
    edema: [['pulmonary edema', X]],
    atelectasis: [['atelectasis', X]],
    pacemaker: [['pacemaker', S]],
    endotracheal_tube: [['endotracheal tube', S]],
    central_line: [['superior vena cava', S]],
    enteric_tube: [['stomach', S]],
    fracture: [
      ['fracture', X],
      ['rib', S],
    ],
    pleural_thickening: [['pleural thickening', X]],
  };

  it('has every finding of the generated reports in the codebook', () => {
    const kinds = new Set(plans.flatMap((p) => p.findings.map((f) => f.kind)));
    // 200 studies cover every finding kind, so each expectation below is exercised
    expect([...kinds].sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const kind of kinds)
      for (const [kw, group] of EXPECTED[kind]) {
        expect(codebook.keywords, `${kind} -> ${kw}`).toContain(kw);
        expect(codebook.groups[group].map((e) => e.text), `${kind} -> ${kw} in ${group}`).toContain(kw);
      }
    // the default kappa0 (200) keeps everything this small corpus has
    for (const g of ENTITY_GROUPS) expect(codebook.groups[g].length).toBeLessThanOrEqual(200);
  });

  it('finds each CheXpert finding name where a report uses it', () => {
    const NAMES = ['effusion', 'pneumothorax', 'cardiomegaly', 'consolidation', 'edema', 'atelectasis', 'fracture', 'pneumonia', 'nodule', 'mass', 'opacity'];
    for (const name of NAMES) {
      const re = new RegExp(`\\b${name}(?:s|es)?\\b`, 'i');
      const users = reports.filter((r) => re.test(r));
      expect(users.length, name).toBeGreaterThan(0);
      for (const r of users) expect(extractEntities(r).some((e) => e.text.split(' ').includes(name)), `${name} in: ${r}`).toBe(true);
    }
  });

  it('covers every mention the CheXpert labeler finds', () => {
    let checked = 0;
    for (const r of reports)
      for (const s of splitSentences(r)) {
        const es = extractEntities(s);
        for (const m of labelSentence(s)) {
          // every occurrence of the mention text must lie on an entity
          let at = s.indexOf(m.text);
          expect(at, m.text).toBeGreaterThanOrEqual(0);
          for (; at >= 0; at = s.indexOf(m.text, at + 1)) {
            const end = at + m.text.length;
            expect(es.some((e) => e.start < end && at < e.end), `${m.observation} mention "${m.text}" in: ${s}`).toBe(true);
          }
          checked++;
        }
      }
    expect(checked).toBeGreaterThan(300);
  });

  it('matches lobes as whole structures', () => {
    const lobes = codebook.groups.biological_structure.map((e) => e.text).filter((t) => t.endsWith(' lobe'));
    expect(lobes.length).toBeGreaterThanOrEqual(4);
    for (const t of lobes) expect(t).toMatch(/^(?:right|left) (?:upper|middle|lower) lobe$/);
  });
});
