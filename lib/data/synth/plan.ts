/**
 * SynthCXR study planning: which findings a study has (with geometry parameters for the renderer),
 * and the report that describes them, with the CheXpert labels that the report text supports.
 *
 * Labels come from the sentences actually written: every sentence template carries the labels a
 * reader would give it (a hedged sentence gives 'uncertain', a normal statement gives 'negative'
 * for what it negates). Observations the report does not talk about stay 'absent'.
 */
import type { LabelValue, Observation, ReportLabels } from '../../text/chexpert.js';
import { emptyLabels, finalizeLabels } from '../../text/labeler.js';
import type { Rng } from './rng.js';

export type Side = 'right' | 'left';
export type Size = 'small' | 'moderate' | 'large';

/** Lung zones. `d` is the lateral distance from the midline and `v` the height, in anatomical units (0..1). */
export interface Lobe {
  name: string;
  side: Side;
  d: number;
  v: number;
}

export const LOBES: readonly Lobe[] = [
  { name: 'right upper lobe', side: 'right', d: 0.2, v: 0.3 },
  { name: 'right middle lobe', side: 'right', d: 0.16, v: 0.53 },
  { name: 'right lower lobe', side: 'right', d: 0.24, v: 0.63 },
  { name: 'left upper lobe', side: 'left', d: 0.2, v: 0.3 },
  { name: 'lingula', side: 'left', d: 0.22, v: 0.52 },
  { name: 'left lower lobe', side: 'left', d: 0.26, v: 0.65 },
];

export type FindingKind =
  | 'cardiomegaly'
  | 'widened_mediastinum'
  | 'pleural_effusion'
  | 'pneumothorax'
  | 'consolidation'
  | 'pneumonia'
  | 'opacity'
  | 'nodule'
  | 'mass'
  | 'edema'
  | 'atelectasis'
  | 'pacemaker'
  | 'endotracheal_tube'
  | 'central_line'
  | 'enteric_tube'
  | 'fracture'
  | 'pleural_thickening';

/** The main CheXpert observation each drawn finding belongs to (its box is filed under it). */
export const FINDING_OBSERVATION: Record<FindingKind, Observation> = {
  cardiomegaly: 'Cardiomegaly',
  widened_mediastinum: 'Enlarged Cardiomediastinum',
  pleural_effusion: 'Pleural Effusion',
  pneumothorax: 'Pneumothorax',
  consolidation: 'Consolidation',
  pneumonia: 'Pneumonia',
  opacity: 'Lung Opacity',
  nodule: 'Lung Lesion',
  mass: 'Lung Lesion',
  edema: 'Edema',
  atelectasis: 'Atelectasis',
  pacemaker: 'Support Devices',
  endotracheal_tube: 'Support Devices',
  central_line: 'Support Devices',
  enteric_tube: 'Support Devices',
  fracture: 'Fracture',
  pleural_thickening: 'Pleural Other',
};

export interface Finding {
  kind: FindingKind;
  side?: Side;
  size?: Size;
  lobe?: Lobe;
  /** false when the report hedges it ("possible ...", "cannot be excluded"). */
  certain: boolean;
  /** Renderer parameters (anatomical units), drawn from the study's RNG. */
  p: Record<string, number>;
}

export interface StudyPlan {
  findings: Finding[];
  report: string;
  labels: ReportLabels;
}

interface Sentence {
  text: string;
  labels: Partial<Record<Observation, LabelValue>>;
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const RIB_NAMES = ['third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth'];

function sizeWord(r: Rng, size: Size, kind: 'effusion' | 'ptx' | 'generic'): string {
  if (size === 'small') return r.pick(kind === 'effusion' ? ['small', 'small', 'trace', 'minimal'] : ['small', 'small', 'tiny']);
  if (size === 'moderate') return r.pick(['moderate', 'moderate', 'moderate-sized']);
  return r.pick(['large', 'large', 'sizable']);
}

/** One sentence per finding, chosen among paraphrases; hedged templates for `certain: false`. */
function describe(r: Rng, f: Finding): Sentence {
  const side = f.side ?? 'right';
  const lobe = f.lobe?.name ?? 'right lower lobe';
  const P = (obs: Observation): Partial<Record<Observation, LabelValue>> => ({ [obs]: 'positive' });
  const U = (obs: Observation): Partial<Record<Observation, LabelValue>> => ({ [obs]: 'uncertain' });
  switch (f.kind) {
    case 'cardiomegaly': {
      if (!f.certain)
        return r.pick([
          { text: 'Borderline cardiomegaly.', labels: U('Cardiomegaly') },
          { text: 'The heart size is borderline enlarged.', labels: U('Cardiomegaly') },
          { text: 'Possible mild cardiomegaly.', labels: U('Cardiomegaly') },
        ]);
      const deg = f.size === 'small' ? 'mild' : f.size === 'moderate' ? 'moderate' : r.pick(['marked', 'severe']);
      return r.pick([
        { text: `${cap(deg)} cardiomegaly.`, labels: P('Cardiomegaly') },
        { text: `The heart is ${deg === 'mild' ? 'mildly' : deg === 'moderate' ? 'moderately' : 'markedly'} enlarged.`, labels: P('Cardiomegaly') },
        { text: 'The cardiac silhouette is enlarged.', labels: P('Cardiomegaly') },
        { text: `${cap(deg)} enlargement of the cardiac silhouette.`, labels: P('Cardiomegaly') },
        { text: 'Cardiomegaly is again noted.', labels: P('Cardiomegaly') },
      ]);
    }
    case 'widened_mediastinum': {
      const L = 'Enlarged Cardiomediastinum' as const;
      if (!f.certain)
        return r.pick([
          { text: 'Possible mediastinal widening.', labels: U(L) },
          { text: 'The superior mediastinum may be widened.', labels: U(L) },
        ]);
      return r.pick([
        { text: 'The mediastinum is widened.', labels: P(L) },
        { text: 'Widening of the superior mediastinum.', labels: P(L) },
        { text: 'Mediastinal widening is noted.', labels: P(L) },
        { text: 'The cardiomediastinal silhouette is enlarged.', labels: P(L) },
      ]);
    }
    case 'pleural_effusion': {
      const L = 'Pleural Effusion' as const;
      const sz = sizeWord(r, f.size ?? 'small', 'effusion');
      if (!f.certain)
        return r.pick([
          { text: `Possible small ${side} pleural effusion.`, labels: U(L) },
          { text: `Blunting of the ${side} costophrenic angle may represent a small effusion.`, labels: U(L) },
          { text: `A small ${side} pleural effusion cannot be excluded.`, labels: U(L) },
        ]);
      return r.pick([
        { text: `${cap(sz)} ${side} pleural effusion.`, labels: P(L) },
        { text: `There is a ${sz} ${side} pleural effusion.`, labels: P(L) },
        { text: `${cap(sz)} ${side}-sided pleural effusion with blunting of the costophrenic angle.`, labels: P(L) },
        { text: `${cap(side)} pleural effusion, ${f.size ?? 'small'} in size.`, labels: P(L) },
        { text: `${cap(sz)} ${side} effusion layers at the base.`, labels: P(L) },
      ]);
    }
    case 'pneumothorax': {
      const L = 'Pneumothorax' as const;
      const sz = sizeWord(r, f.size ?? 'small', 'ptx');
      if (!f.certain)
        return r.pick([
          { text: `A small ${side} apical pneumothorax cannot be excluded.`, labels: U(L) },
          { text: `Possible small ${side} apical pneumothorax.`, labels: U(L) },
          { text: `Questionable tiny ${side} pneumothorax.`, labels: U(L) },
        ]);
      return r.pick([
        { text: `${cap(sz)} ${side} pneumothorax.`, labels: P(L) },
        { text: `There is a ${sz} ${side} apical pneumothorax.`, labels: P(L) },
        { text: `${cap(sz)} ${side}-sided pneumothorax with a visible pleural line.`, labels: P(L) },
        { text: `${cap(side)} pneumothorax is present, ${f.size ?? 'small'} in size.`, labels: P(L) },
      ]);
    }
    case 'consolidation': {
      const L = 'Consolidation' as const;
      if (!f.certain)
        return r.pick([
          { text: `Possible early consolidation in the ${lobe}.`, labels: U(L) },
          { text: `Subtle ${lobe} consolidation is questioned.`, labels: U(L) },
        ]);
      return r.pick([
        { text: `Focal consolidation in the ${lobe}.`, labels: P(L) },
        { text: `${cap(lobe)} consolidation.`, labels: P(L) },
        { text: `There is airspace consolidation in the ${lobe}.`, labels: P(L) },
        { text: `Dense consolidation is seen in the ${lobe}.`, labels: P(L) },
      ]);
    }
    case 'pneumonia': {
      if (!f.certain)
        return r.pick([
          { text: `${cap(lobe)} consolidation concerning for pneumonia.`, labels: { Consolidation: 'positive', Pneumonia: 'uncertain' } },
          { text: `Airspace opacity in the ${lobe} may represent pneumonia.`, labels: { 'Lung Opacity': 'positive', Pneumonia: 'uncertain' } },
          { text: `Focal consolidation in the ${lobe}, suspicious for pneumonia.`, labels: { Consolidation: 'positive', Pneumonia: 'uncertain' } },
        ]);
      return r.pick([
        { text: `${cap(lobe)} consolidation, consistent with pneumonia.`, labels: { Consolidation: 'positive', Pneumonia: 'positive' } },
        { text: `Findings compatible with ${lobe} pneumonia.`, labels: { Pneumonia: 'positive' } },
        { text: `Consolidation in the ${lobe} compatible with pneumonia.`, labels: { Consolidation: 'positive', Pneumonia: 'positive' } },
        { text: `${cap(lobe)} pneumonia.`, labels: { Pneumonia: 'positive' } },
      ]);
    }
    case 'opacity': {
      const L = 'Lung Opacity' as const;
      return r.pick([
        { text: `Patchy opacity in the ${lobe}.`, labels: P(L) },
        { text: `Hazy opacity projects over the ${lobe}.`, labels: P(L) },
        { text: `${cap(lobe)} airspace opacity.`, labels: P(L) },
        { text: `Ill-defined opacity in the ${lobe}.`, labels: P(L) },
        { text: `There is increased opacity in the ${lobe}.`, labels: P(L) },
      ]);
    }
    case 'nodule': {
      const L = 'Lung Lesion' as const;
      const mm = Math.round(f.p.r * 400);
      if (!f.certain)
        return r.pick([
          { text: `Possible nodule in the ${lobe}.`, labels: U(L) },
          { text: `A questionable ${mm} mm nodule in the ${lobe}.`, labels: U(L) },
        ]);
      return r.pick([
        { text: `A ${mm} mm nodule in the ${lobe}.`, labels: P(L) },
        { text: `${cap(lobe)} pulmonary nodule measuring ${mm} mm.`, labels: P(L) },
        { text: `There is a well-circumscribed ${mm} mm nodule in the ${lobe}.`, labels: P(L) },
        { text: `Nodular opacity in the ${lobe}.`, labels: { 'Lung Lesion': 'positive', 'Lung Opacity': 'positive' } },
      ]);
    }
    case 'mass': {
      const L = 'Lung Lesion' as const;
      const cm = (f.p.r * 60).toFixed(1);
      return r.pick([
        { text: `Rounded ${cm} cm mass in the ${lobe}.`, labels: P(L) },
        { text: `There is a ${cm} cm lobulated mass in the ${lobe}.`, labels: P(L) },
        { text: `${cap(lobe)} mass measuring ${cm} cm.`, labels: P(L) },
      ]);
    }
    case 'edema': {
      const L = 'Edema' as const;
      if (!f.certain)
        return r.pick([
          { text: 'Findings may reflect mild interstitial edema.', labels: U(L) },
          { text: 'Possible mild pulmonary edema.', labels: U(L) },
        ]);
      const deg = f.size === 'small' ? 'mild' : f.size === 'moderate' ? 'moderate' : 'severe';
      return r.pick([
        { text: `${cap(deg)} pulmonary edema.`, labels: P(L) },
        { text: 'Bilateral perihilar haziness consistent with pulmonary edema.', labels: { Edema: 'positive', 'Lung Opacity': 'positive' } },
        { text: 'Pulmonary vascular congestion with interstitial edema.', labels: P(L) },
        { text: `There is ${deg} interstitial pulmonary edema.`, labels: P(L) },
      ]);
    }
    case 'atelectasis': {
      const L = 'Atelectasis' as const;
      if (!f.certain)
        return r.pick([
          { text: `Linear opacity at the ${side} base, likely subsegmental atelectasis.`, labels: { 'Lung Opacity': 'positive', Atelectasis: 'uncertain' } },
          { text: `Streaky ${side} basilar opacity may represent atelectasis.`, labels: { 'Lung Opacity': 'positive', Atelectasis: 'uncertain' } },
        ]);
      return r.pick([
        { text: `Plate-like atelectasis at the ${side} lung base.`, labels: P(L) },
        { text: `${cap(side)} basilar atelectasis.`, labels: P(L) },
        { text: `Discoid atelectasis in the ${lobe}.`, labels: P(L) },
        { text: `Linear ${side} basilar atelectasis.`, labels: P(L) },
      ]);
    }
    case 'pacemaker':
      return r.pick([
        { text: 'Left-sided pacemaker with lead terminating in the right ventricle.', labels: P('Support Devices') },
        { text: 'A left chest wall pacemaker is in place.', labels: P('Support Devices') },
        { text: 'Cardiac pacing device overlies the left chest with the lead in the right ventricle.', labels: P('Support Devices') },
      ]);
    case 'endotracheal_tube': {
      const cm = Math.max(2, Math.round((0.33 - f.p.tip) * 45));
      return r.pick([
        { text: `Endotracheal tube terminates ${cm} cm above the carina.`, labels: P('Support Devices') },
        { text: 'The endotracheal tube is in standard position.', labels: P('Support Devices') },
        { text: `ET tube tip is ${cm} cm above the carina.`, labels: P('Support Devices') },
      ]);
    }
    case 'central_line':
      return r.pick([
        { text: 'Right subclavian central venous catheter with tip in the SVC.', labels: P('Support Devices') },
        { text: 'A right-sided central line terminates in the superior vena cava.', labels: P('Support Devices') },
        { text: 'Right PICC line tip projects over the SVC.', labels: P('Support Devices') },
      ]);
    case 'enteric_tube':
      return r.pick([
        { text: 'Enteric tube courses below the diaphragm into the stomach.', labels: P('Support Devices') },
        { text: 'Nasogastric tube tip is in the stomach.', labels: P('Support Devices') },
        { text: 'A feeding tube passes below the left hemidiaphragm.', labels: P('Support Devices') },
      ]);
    case 'fracture': {
      const L = 'Fracture' as const;
      const rib = RIB_NAMES[Math.min(RIB_NAMES.length - 1, Math.max(0, Math.round(f.p.rib) - 1))];
      if (!f.certain)
        return r.pick([
          { text: `Possible nondisplaced fracture of the ${side} ${rib} rib.`, labels: U(L) },
          { text: `Questionable ${side} ${rib} rib fracture.`, labels: U(L) },
        ]);
      return r.pick([
        { text: `Acute fracture of the ${side} ${rib} posterior rib.`, labels: P(L) },
        { text: `Displaced ${side} ${rib} rib fracture.`, labels: P(L) },
        { text: `There is a fracture of the ${side} ${rib} rib.`, labels: P(L) },
      ]);
    }
    case 'pleural_thickening': {
      const L = 'Pleural Other' as const;
      return f.p.apical > 0.5
        ? r.pick([
            { text: `${cap(side)} apical pleural thickening.`, labels: P(L) },
            { text: `Mild ${side} apical pleural thickening.`, labels: P(L) },
          ])
        : r.pick([
            { text: `Pleural thickening along the ${side} lateral chest wall.`, labels: P(L) },
            { text: `${cap(side)} lateral pleural thickening.`, labels: P(L) },
          ]);
    }
  }
}

interface NormalStatement {
  /** Observations this statement speaks about; it is only used if none of them is in the study. */
  about: Observation[];
  options: Sentence[];
}

const N = (...obs: Observation[]): Partial<Record<Observation, LabelValue>> => Object.fromEntries(obs.map((o) => [o, 'negative']));

// Normal statements, grouped by topic; each study uses a random subset compatible with its findings.
const NORMALS: NormalStatement[][] = [
  [
    {
      about: ['Cardiomegaly', 'Enlarged Cardiomediastinum'],
      options: [
        { text: 'Heart size and mediastinal contours are normal.', labels: N('Cardiomegaly', 'Enlarged Cardiomediastinum') },
        { text: 'The heart size and cardiomediastinal silhouette are within normal limits.', labels: N('Cardiomegaly', 'Enlarged Cardiomediastinum') },
        { text: 'Normal heart size and mediastinal contours.', labels: N('Cardiomegaly', 'Enlarged Cardiomediastinum') },
      ],
    },
    {
      about: ['Cardiomegaly'],
      options: [
        { text: 'Heart size is normal.', labels: N('Cardiomegaly') },
        { text: 'The heart is not enlarged.', labels: N('Cardiomegaly') },
        { text: 'Normal heart size.', labels: N('Cardiomegaly') },
        { text: 'The cardiac silhouette is within normal limits.', labels: N('Cardiomegaly') },
      ],
    },
    {
      about: ['Enlarged Cardiomediastinum'],
      options: [
        { text: 'The cardiomediastinal silhouette is normal.', labels: N('Enlarged Cardiomediastinum') },
        { text: 'Mediastinal contours are unremarkable.', labels: N('Enlarged Cardiomediastinum') },
      ],
    },
  ],
  [
    {
      about: ['Lung Opacity', 'Consolidation', 'Pneumonia', 'Lung Lesion', 'Edema', 'Atelectasis'],
      options: [
        { text: 'The lungs are clear.', labels: N('Lung Opacity') },
        { text: 'Lungs are well expanded and clear.', labels: N('Lung Opacity') },
        { text: 'The lungs are clear without focal consolidation.', labels: N('Lung Opacity', 'Consolidation') },
      ],
    },
    {
      about: ['Consolidation', 'Lung Opacity'],
      options: [
        { text: 'No focal airspace disease.', labels: N('Lung Opacity') },
        { text: 'There is no focal airspace opacity.', labels: N('Lung Opacity') },
      ],
    },
    {
      about: ['Consolidation'],
      options: [
        { text: 'No focal consolidation.', labels: N('Consolidation') },
        { text: 'There is no focal consolidation.', labels: N('Consolidation') },
      ],
    },
  ],
  [
    {
      about: ['Pleural Effusion', 'Pneumothorax'],
      options: [
        { text: 'No pleural effusion or pneumothorax.', labels: N('Pleural Effusion', 'Pneumothorax') },
        { text: 'There is no pleural effusion or pneumothorax.', labels: N('Pleural Effusion', 'Pneumothorax') },
        { text: 'No pneumothorax or pleural effusion is seen.', labels: N('Pleural Effusion', 'Pneumothorax') },
      ],
    },
    {
      about: ['Pleural Effusion'],
      options: [
        { text: 'No pleural effusion.', labels: N('Pleural Effusion') },
        { text: 'The costophrenic angles are sharp.', labels: N('Pleural Effusion') },
        { text: 'There is no evidence of pleural effusion.', labels: N('Pleural Effusion') },
      ],
    },
    {
      about: ['Pneumothorax'],
      options: [
        { text: 'No pneumothorax.', labels: N('Pneumothorax') },
        { text: 'There is no pneumothorax.', labels: N('Pneumothorax') },
        { text: 'No evidence of pneumothorax.', labels: N('Pneumothorax') },
      ],
    },
  ],
  [
    { about: ['Edema'], options: [{ text: 'No pulmonary edema.', labels: N('Edema') }, { text: 'There is no evidence of pulmonary edema.', labels: N('Edema') }] },
  ],
  [
    {
      about: ['Lung Lesion'],
      options: [
        { text: 'No suspicious pulmonary nodules or masses.', labels: N('Lung Lesion') },
        { text: 'No focal pulmonary nodule is seen.', labels: N('Lung Lesion') },
      ],
    },
  ],
  [
    { about: ['Pneumonia'], options: [{ text: 'No evidence of pneumonia.', labels: N('Pneumonia') }] },
  ],
  [
    {
      about: ['Fracture'],
      options: [
        { text: 'No displaced rib fractures.', labels: N('Fracture') },
        { text: 'No acute fracture is identified.', labels: N('Fracture') },
      ],
    },
    { about: ['Fracture'], options: [{ text: 'No acute osseous abnormality.', labels: {} }, { text: 'The osseous structures are intact.', labels: {} }] },
  ],
];

/** Samples the findings of one study. About a third of studies are normal. */
export function sampleFindings(r: Rng): Finding[] {
  const out: Finding[] = [];
  const sizeOf = (): Size => r.pick(['small', 'small', 'moderate', 'moderate', 'large'] as const);
  const lobe = (): Lobe => r.pick(LOBES);
  const normal = r.chance(0.32);
  if (!normal) {
    const n = r.pick([1, 1, 1, 2, 2, 3]);
    const weights: Array<[FindingKind, number]> = [
      ['cardiomegaly', 10],
      ['widened_mediastinum', 4],
      ['pleural_effusion', 12],
      ['pneumothorax', 7],
      ['consolidation', 7],
      ['pneumonia', 7],
      ['opacity', 8],
      ['nodule', 7],
      ['mass', 3],
      ['edema', 7],
      ['atelectasis', 8],
      ['fracture', 5],
      ['pleural_thickening', 3],
    ];
    const total = weights.reduce((a, [, w]) => a + w, 0);
    const chosen = new Set<FindingKind>();
    let guard = 0;
    while (chosen.size < n && guard++ < 50) {
      let x = r.next() * total;
      for (const [k, wt] of weights) {
        x -= wt;
        if (x < 0) {
          chosen.add(k);
          break;
        }
      }
    }
    // one lung-parenchyma finding of the consolidation family per study keeps reports unambiguous
    if (chosen.has('pneumonia')) chosen.delete('consolidation');
    for (const kind of chosen) {
      const certain = !r.chance(kind === 'opacity' || kind === 'mass' || kind === 'pleural_thickening' ? 0 : 0.15);
      const f: Finding = { kind, certain, p: {} };
      switch (kind) {
        case 'cardiomegaly':
          f.size = certain ? sizeOf() : 'small';
          f.p.scale = { small: 1.3, moderate: 1.45, large: 1.62 }[f.size] + r.uniform(-0.04, 0.04);
          break;
        case 'widened_mediastinum':
          f.p.widen = r.uniform(0.035, 0.06) * (certain ? 1 : 0.7);
          break;
        case 'pleural_effusion':
          f.side = r.pick(['right', 'left'] as const);
          f.size = certain ? sizeOf() : 'small';
          f.p.h = { small: 0.05, moderate: 0.13, large: 0.24 }[f.size] * r.uniform(0.85, 1.15);
          break;
        case 'pneumothorax':
          f.side = r.pick(['right', 'left'] as const);
          f.size = certain ? sizeOf() : 'small';
          f.p.gap = { small: 0.03, moderate: 0.06, large: 0.1 }[f.size] * r.uniform(0.85, 1.15);
          break;
        case 'consolidation':
        case 'pneumonia':
        case 'opacity': {
          f.lobe = lobe();
          f.side = f.lobe.side;
          f.size = sizeOf();
          f.p.R = { small: 0.045, moderate: 0.065, large: 0.09 }[f.size] * r.uniform(0.85, 1.2);
          f.p.dd = r.uniform(-0.035, 0.035);
          f.p.dv = r.uniform(-0.04, 0.04);
          f.p.nblob = r.int(3, 6);
          f.p.blobSeed = r.int(0, 1e9);
          break;
        }
        case 'nodule':
        case 'mass':
          f.lobe = lobe();
          f.side = f.lobe.side;
          f.p.r = kind === 'nodule' ? r.uniform(0.018, 0.035) : r.uniform(0.045, 0.075);
          f.p.dd = r.uniform(-0.06, 0.06);
          f.p.dv = r.uniform(-0.06, 0.06);
          f.p.phase = r.uniform(0, 6.283);
          break;
        case 'edema':
          f.size = certain ? sizeOf() : 'small';
          f.p.amount = { small: 0.6, moderate: 0.85, large: 1.1 }[f.size];
          break;
        case 'atelectasis': {
          f.side = r.pick(['right', 'left'] as const);
          f.lobe = LOBES.find((l) => l.side === f.side && l.name.includes('lower'))!;
          f.p.d = r.uniform(0.14, 0.3);
          f.p.v = r.uniform(0.6, 0.68);
          f.p.len = r.uniform(0.05, 0.09);
          f.p.th = r.uniform(0.008, 0.013);
          f.p.ang = r.uniform(-0.25, 0.25);
          break;
        }
        case 'fracture':
          f.side = r.pick(['right', 'left'] as const);
          f.p.rib = r.int(2, 6); // index among posterior ribs (0 = first drawn)
          f.p.d = r.uniform(0.2, 0.34);
          f.p.shift = r.uniform(0.006, 0.014) * (r.chance(0.5) ? 1 : -1);
          break;
        case 'pleural_thickening':
          f.side = r.pick(['right', 'left'] as const);
          f.p.apical = r.chance(0.5) ? 1 : 0;
          f.p.th = r.uniform(0.012, 0.02);
          break;
        default:
          break;
      }
      out.push(f);
    }
  }
  // support devices, independent of the rest
  if (r.chance(0.1)) out.push({ kind: 'pacemaker', certain: true, p: { u: r.uniform(0.7, 0.8), v: r.uniform(0.17, 0.24) } });
  if (r.chance(0.08)) out.push({ kind: 'endotracheal_tube', certain: true, p: { tip: r.uniform(0.2, 0.27) } });
  if (r.chance(0.08)) out.push({ kind: 'central_line', certain: true, p: { tip: r.uniform(0.32, 0.4) } });
  if (r.chance(0.06)) out.push({ kind: 'enteric_tube', certain: true, p: { dx: r.uniform(-0.02, 0.02) } });
  return out;
}

const ORDER: FindingKind[] = [
  'endotracheal_tube',
  'enteric_tube',
  'central_line',
  'pacemaker',
  'cardiomegaly',
  'widened_mediastinum',
  'edema',
  'pneumonia',
  'consolidation',
  'opacity',
  'atelectasis',
  'nodule',
  'mass',
  'pleural_effusion',
  'pneumothorax',
  'pleural_thickening',
  'fracture',
];

/** Writes the findings-section report and its labels. */
export function writeReport(r: Rng, findings: Finding[]): { report: string; labels: ReportLabels } {
  const sents: Sentence[] = [];
  const sorted = [...findings].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
  const present = new Set<Observation>();
  const bilateralEffusion = sorted.filter((f) => f.kind === 'pleural_effusion').length === 2;
  for (const f of sorted) {
    if (bilateralEffusion && f.kind === 'pleural_effusion') continue;
    sents.push(describe(r, f));
  }
  if (bilateralEffusion) sents.push({ text: r.pick(['Small bilateral pleural effusions.', 'Bilateral pleural effusions.']), labels: { 'Pleural Effusion': 'positive' } });
  for (const f of findings) present.add(FINDING_OBSERVATION[f.kind]);
  for (const s of sents) for (const o of Object.keys(s.labels) as Observation[]) present.add(o);
  if (findings.some((f) => f.kind === 'pneumonia')) present.add('Consolidation').add('Lung Opacity');
  // normal statements: for each topic, the first compatible statement (in random order), with some probability
  const normals: Sentence[] = [];
  for (const topic of NORMALS) {
    if (!r.chance(findings.length === 0 ? 0.85 : 0.6)) continue;
    const candidates = topic.filter((st) => st.about.every((o) => !present.has(o)));
    if (candidates.length === 0) continue;
    const st = r.pick(candidates);
    normals.push(r.pick(st.options));
  }
  if (findings.length === 0 && r.chance(0.35)) normals.push({ text: r.pick(['No acute cardiopulmonary process.', 'No acute cardiopulmonary abnormality.']), labels: {} });
  // radiologists usually start with devices/heart; mix normal statements in a plausible order
  const all = r.chance(0.5) ? [...sents, ...normals] : [...normals.slice(0, 1), ...sents, ...normals.slice(1)];
  const labels = emptyLabels();
  const rank: Record<LabelValue, number> = { absent: 0, negative: 1, uncertain: 2, positive: 3 };
  for (const s of all)
    for (const [o, v] of Object.entries(s.labels) as Array<[Observation, LabelValue]>) if (rank[v] > rank[labels[o]]) labels[o] = v;
  return { report: all.map((s) => s.text).join(' '), labels: finalizeLabels(labels) };
}

export function planStudy(r: Rng): StudyPlan {
  const findings = sampleFindings(r);
  const { report, labels } = writeReport(r, findings);
  return { findings, report, labels };
}
