/**
 * Lexicon-based clinical entity extraction for chest X-ray reports, and the AdaMatch-Cyclic
 * textual codebook built from it.
 *
 * AdaMatch-Cyclic (Sec. 3.2.1, "Building textual codebook") runs a pre-trained biomedical NER model
 * (BioEN, trained on the MACCROBAT scheme) over the training reports, keeps the entities of four
 * groups — Biological_structure, Detailed_description, Disease_disorder, Sign_symptom — and takes the
 * `kappa0` (200) most frequent entities of each group as the keywords of the codebook. We cannot
 * download NER weights, so this module is a deterministic stand-in: a curated phrase lexicon for
 * chest radiograph reports (MIMIC-CXR / IU X-Ray phrasing and the SynthCXR templates), matched
 * longest-first over whole words.
 *
 * Matching:
 *  - The text is split into word tokens (letters and digits; offsets are kept on the original
 *    string). A phrase matches a run of tokens separated only by whitespace or a single hyphen, so
 *    "left-sided" matches "left sided" and no phrase reaches across a comma, period or apostrophe.
 *  - Tokens and lexicon phrases are compared in a singular-ish normal form (`effusions` ->
 *    `effusion`, `opacities` -> `opacity`, `masses` -> `mass`, `lungs` -> `lung`, `apices` ->
 *    `apex`, `hila` -> `hilum`; words ending in -ss/-us/-is such as `atelectasis` are kept). Matching
 *    is on whole tokens: `mass` does not match inside `massive`, `lung` matches `lungs`.
 *  - Longest match wins, left to right, without overlaps: "right lower lobe" is one entity, not
 *    "right" + "lower" + "lobe"; "chest pain" is one entity, not "chest" + "pain".
 *  - Each match is reported with its lexicon canonical form (lower case, singular): "Effusions" ->
 *    `effusion`, "mildly" -> `mild`, "Left-sided" -> `left`, "ET tube" -> `endotracheal tube`.
 *  - Negation is ignored on purpose: "no pneumothorax" still yields `pneumothorax`; the codebook
 *    counts mentions, as counting NER output over reports does.
 *
 * Grouping follows what a MACCROBAT-style NER gives for report text:
 *  - biological_structure: anatomy (lung, lobes, heart, cardiac silhouette, mediastinum, hilum,
 *    diaphragm, costophrenic angle, pleura, ribs, spine, aorta, trachea, carina, SVC, stomach, ...).
 *  - detailed_description: modifiers — size and severity (small, large, mild, severe; MACCROBAT has a
 *    separate Severity type that the paper's four groups fold away, so we keep them here), laterality
 *    and location (left, right, bilateral, basilar, apical, perihilar), shape and texture (patchy,
 *    linear, nodular, hazy), change over time (stable, unchanged, increased, new) and state (enlarged,
 *    widened, normal, clear, sharp).
 *  - disease_disorder: diseases and radiological diagnoses (pneumonia, pleural effusion,
 *    pneumothorax, edema, atelectasis, cardiomegaly, consolidation, fracture, nodule, mass, emphysema,
 *    scarring, hernia, ...).
 *  - sign_symptom: clinical symptoms (shortness of breath, chest pain, cough, fever) and imaging
 *    signs that are not diagnoses by themselves (opacity, haziness, infiltrate, blunting, vascular
 *    congestion, Kerley B lines, volume loss, pleural line, ...).
 *  - Support devices (tubes, lines, catheters, pacemakers, wires, clips): MACCROBAT files devices
 *    under Therapeutic_procedure / Other_entity, i.e. outside the four groups the paper keeps, so a
 *    faithful BioEN run would mostly drop them. They are, however, the most frequent visible objects in
 *    inpatient chest films and a CheXpert class, so we keep them and file them under
 *    **biological_structure**: like anatomy, a device is a physical object with a location in the
 *    image (which is what AdaMatch matches keywords against), and filing it there keeps
 *    disease_disorder limited to pathology. Change `DEVICES_GROUP` below to move them.
 *
 * The lexicon mirrors the mention vocabulary of the CheXpert-style labeler (./labeler.ts), whose
 * rules are observation-oriented regular expressions (anatomy + state combinations, masks) rather
 * than phrase lists; the unit tests check that every labeler mention in SynthCXR reports is covered by
 * an entity here.
 */
import { ArgumentError, RadkitError } from '../errors.js';

export type EntityGroup = 'biological_structure' | 'detailed_description' | 'disease_disorder' | 'sign_symptom';

/** The four entity groups, in codebook order. */
export const ENTITY_GROUPS: readonly EntityGroup[] = ['biological_structure', 'detailed_description', 'disease_disorder', 'sign_symptom'];

export interface Entity {
  /** Canonical lower-case form of the entity (e.g. `pleural effusion` for "Pleural effusions"). */
  text: string;
  group: EntityGroup;
  /** Offsets of the matched surface text in the input string (end exclusive). */
  start: number;
  end: number;
}

// ---------------------------------------------------------------------------------------------
// Lexicon. Each line: `canonical|variant|variant...`; the canonical form is also a variant.
// Variants are normalised like report text (lower case, singular, hyphen = space) before lookup.

const DEVICES_GROUP: EntityGroup = 'biological_structure';

const ANATOMY: readonly string[] = [
  'lung|lungs|lung field|pulmonary',
  'right upper lobe|rul',
  'right middle lobe|rml',
  'right lower lobe|rll',
  'left upper lobe|lul',
  'left lower lobe|lll',
  'upper lobe',
  'middle lobe',
  'lower lobe',
  'lobe',
  'lingula|lingular',
  'lung base',
  'base',
  'apex|apices|lung apex',
  'hilum|hila|hilar|hilus',
  'hilar contour',
  'heart|cardiac|heart size|cardiac size|size of the heart',
  'heart border',
  'cardiac silhouette|cardiac shadow',
  'cardiac contour',
  'cardiomediastinal silhouette|cardiomediastinal|cardio-mediastinal silhouette|cardiomediastinal contour|cardiomediastinal shadow',
  'mediastinum|mediastinal',
  'superior mediastinum',
  'mediastinal contour|mediastinal silhouette',
  'cardiopulmonary',
  'right ventricle',
  'left ventricle',
  'right atrium',
  'left atrium',
  'cavoatrial junction',
  'superior vena cava|svc',
  'internal jugular vein|internal jugular|ij',
  'subclavian vein|subclavian',
  'brachiocephalic vein',
  'pulmonary artery',
  'pulmonary vasculature|vasculature',
  'aorta|aortic',
  'aortic knob|aortic knuckle',
  'aortic arch',
  'thoracic aorta',
  'trachea|tracheal',
  'carina',
  'bronchus|bronchi',
  'airway',
  'esophagus',
  'diaphragm',
  'hemidiaphragm|hemi-diaphragm',
  'costophrenic angle|costophrenic|costophrenic sulcus|costophrenic sulci',
  'cardiophrenic angle',
  'pleura|pleural',
  'pleural space',
  'fissure',
  'minor fissure',
  'major fissure',
  'parenchyma|parenchymal|lung parenchyma',
  'interstitium',
  'lung volume',
  'rib',
  'clavicle',
  'scapula',
  'sternum',
  'spine|spinal',
  'thoracic spine',
  'vertebra|vertebrae|vertebral body',
  'shoulder',
  'humerus',
  'chest wall',
  'chest',
  'thorax|thoracic',
  'hemithorax|hemithoraces',
  'soft tissue',
  'osseous structure|bony structure',
  'bone|bony|osseous',
  'neck',
  'axilla',
  'breast',
  'stomach',
  'abdomen|upper abdomen|abdominal',
];

const DEVICES: readonly string[] = [
  'endotracheal tube|et tube|ett|endotracheal',
  'tracheostomy tube|tracheostomy',
  'enteric tube',
  'nasogastric tube|ng tube|ngt|nasogastric',
  'orogastric tube|og tube',
  'feeding tube|dobhoff tube|dobhoff',
  'chest tube',
  'pigtail catheter',
  'central venous catheter|cvc|central venous line|central line',
  'picc|picc line',
  'swan-ganz catheter|swan-ganz|pulmonary artery catheter',
  'catheter',
  'port|port-a-cath|chest port|infusion port',
  'pacemaker|pacer|pacing device|cardiac pacing device|cardiac pacemaker',
  'lead',
  'icd|aicd|defibrillator',
  'sternotomy wire|sternal wire|median sternotomy wire',
  'sternotomy|median sternotomy',
  'clip|surgical clip',
  'stent',
  'prosthetic valve|valve replacement',
  'drain',
  'tube',
  'device|support device',
];

const DESCRIPTIONS: readonly string[] = [
  // laterality and location
  'right|right-sided',
  'left|left-sided',
  'bilateral|bilaterally',
  'unilateral',
  'bibasilar|bibasal',
  'basilar|basal',
  'apical',
  'biapical',
  'perihilar',
  'retrocardiac',
  'subpleural',
  'central|centrally',
  'peripheral',
  'upper',
  'middle',
  'lower',
  'superior',
  'inferior',
  'anterior',
  'posterior',
  'lateral',
  'medial',
  'first',
  'second',
  'third',
  'fourth',
  'fifth',
  'sixth',
  'seventh',
  'eighth',
  'ninth',
  'tenth',
  'eleventh',
  'twelfth',
  // size and severity
  'small|small-sized',
  'tiny',
  'trace',
  'minimal|minimally',
  'moderate|moderately|moderate-sized',
  'large|large-sized',
  'sizable|sizeable',
  'massive',
  'mild|mildly',
  'severe|severely',
  'marked|markedly',
  'slight|slightly',
  'subtle',
  // distribution, shape and texture
  'multiple',
  'multifocal',
  'scattered',
  'diffuse|diffusely',
  'focal',
  'patchy',
  'linear',
  'streaky',
  'reticular',
  'reticulonodular',
  'nodular',
  'interstitial',
  'alveolar',
  'airspace|air space|air-space',
  'ground-glass|ground glass',
  'hazy',
  'dense',
  'faint',
  'ill-defined|poorly defined|poorly-defined',
  'well-defined',
  'well-circumscribed|circumscribed',
  'rounded|round',
  'lobulated',
  'spiculated',
  'irregular',
  'calcified',
  'noncalcified|non-calcified',
  'cavitary|cavitating',
  'loculated',
  'layering',
  'tortuous|tortuosity',
  'atherosclerotic',
  'plate-like|platelike',
  'discoid',
  'subsegmental',
  'segmental',
  'lobar',
  // time course and change
  'acute',
  'chronic',
  'early',
  'old',
  'healed',
  'healing',
  'new',
  'recent',
  'unchanged',
  'stable',
  'increased|increasing',
  'decreased|decreasing',
  'improved|improving',
  'worsened|worsening',
  'progressive|progressed',
  'persistent|persistently',
  'residual',
  'resolved|resolving',
  // state
  'enlarged|enlargement',
  'widened|widening',
  'elevated|elevation',
  'displaced',
  'nondisplaced|non-displaced',
  'prominent|prominence',
  'engorged|engorgement',
  'normal',
  'top normal|top-normal',
  'within normal limits',
  'abnormal',
  'borderline',
  'clear',
  'sharp',
  'unremarkable',
  'intact',
  'well expanded|well-expanded',
  'low',
];

const DISEASES: readonly string[] = [
  'pneumonia|pneumonias',
  'bronchopneumonia',
  'aspiration',
  'infection',
  'pleural effusion',
  'effusion',
  'pericardial effusion',
  'pleural fluid',
  'pneumothorax|pneumothoraces|ptx',
  'hydropneumothorax',
  'hemothorax',
  'hydrothorax',
  'edema|oedema',
  'pulmonary edema|pulmonary oedema',
  'interstitial edema|interstitial pulmonary edema',
  'alveolar edema',
  'atelectasis|atelectases|atelectatic',
  'collapse|collapsed',
  'cardiomegaly|cardiac enlargement',
  'consolidation|consolidative|consolidated',
  'fracture|fractured|fx',
  'nodule',
  'mass',
  'lesion',
  'tumor|tumour',
  'neoplasm',
  'carcinoma',
  'cancer',
  'malignancy',
  'metastasis|metastases|metastatic disease',
  'lymphadenopathy|adenopathy',
  'emphysema|emphysematous',
  'subcutaneous emphysema',
  'copd|chronic obstructive pulmonary disease',
  'fibrosis|fibrotic',
  'pulmonary fibrosis',
  'interstitial lung disease',
  'bronchiectasis',
  'granuloma|granulomas',
  'scarring|scar',
  'pleural thickening',
  'pleural plaque',
  'airspace disease|air space disease',
  'congestive heart failure|chf',
  'heart failure',
  'pulmonary embolism',
  'pulmonary hypertension',
  'aneurysm',
  'hernia|hiatal hernia|hiatus hernia',
  'scoliosis',
  'kyphosis',
  'degenerative change|degenerative changes',
  'osteopenia',
  'abscess',
  'tuberculosis',
  'sarcoidosis',
  'pneumomediastinum',
  'pneumoperitoneum',
  'deformity',
  'dislocation',
  'cardiomyopathy',
  'contusion',
  'hematoma',
  'hemorrhage',
];

const SIGNS: readonly string[] = [
  // imaging signs
  'opacity',
  'opacification|opacified',
  'haziness',
  'density',
  'infiltrate|infiltration|infiltrative',
  'blunting|blunted',
  'air bronchogram',
  'kerley b line|kerley line|septal line',
  'cephalization',
  'vascular congestion|pulmonary vascular congestion',
  'congestion',
  'volume loss',
  'mediastinal shift',
  'shift',
  'air-fluid level',
  'air trapping',
  'hyperinflation|hyperinflated|hyperexpansion|hyperexpanded',
  'low lung volume',
  'lucency',
  'calcification',
  'pleural line',
  'mass effect',
  'thickening',
  'peribronchial thickening|peribronchial cuffing|bronchial wall thickening',
  'crowding',
  // clinical signs and symptoms
  'shortness of breath|sob|breathlessness',
  'dyspnea|dyspnoea',
  'chest pain',
  'pain',
  'cough',
  'fever',
  'chills',
  'hypoxia|hypoxemia',
  'tachypnea',
  'tachycardia',
  'wheezing',
  'hemoptysis',
  'weakness',
  'respiratory distress',
];

// ---------------------------------------------------------------------------------------------
// Normalisation

const IRREGULAR: Readonly<Record<string, string>> = {
  apices: 'apex',
  hila: 'hilum',
  sulci: 'sulcus',
  bronchi: 'bronchus',
  vertebrae: 'vertebra',
  bullae: 'bulla',
  axillae: 'axilla',
  pleurae: 'pleura',
  pneumothoraces: 'pneumothorax',
  hemithoraces: 'hemithorax',
  thoraces: 'thorax',
  metastases: 'metastasis',
  atelectases: 'atelectasis',
  prostheses: 'prosthesis',
  stenoses: 'stenosis',
  diagnoses: 'diagnosis',
};

/** Singular-ish normal form of one lower-case word token. */
function singular(t: string): string {
  const irr = IRREGULAR[t];
  if (irr !== undefined) return irr;
  if (t.length <= 3 || !/[a-z]$/.test(t)) return t;
  if (/(?:ss|us|is|ys|ous)$/.test(t)) return t;
  if (t.endsWith('ies') && t.length > 4) return t.slice(0, -3) + 'y';
  if (/(?:sses|xes|ches|shes)$/.test(t)) return t.slice(0, -2);
  if (t.endsWith('s')) return t.slice(0, -1);
  return t;
}

interface Token {
  norm: string;
  start: number;
  end: number;
}

const WORD = /[\p{L}\p{N}]+/gu;
/** What may separate two words of one phrase: whitespace and/or one hyphen. */
const JOIN = /^\s*-?\s*$/;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  WORD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = WORD.exec(text)) !== null) out.push({ norm: singular(m[0].toLowerCase()), start: m.index, end: m.index + m[0].length });
  return out;
}

interface LexEntry {
  text: string;
  group: EntityGroup;
}

function buildLexicon(): { map: Map<string, LexEntry>; maxLen: number } {
  const map = new Map<string, LexEntry>();
  let maxLen = 1;
  const add = (lines: readonly string[], group: EntityGroup) => {
    for (const line of lines) {
      const variants = line.split('|');
      const canonical = variants[0];
      for (const v of variants) {
        const toks = tokenize(v);
        if (toks.length === 0) throw new RadkitError(`entities lexicon: empty variant in "${line}"`, 'ERR_INTERNAL', 'buildLexicon');
        const key = toks.map((t) => t.norm).join(' ');
        const prev = map.get(key);
        if (prev && (prev.text !== canonical || prev.group !== group))
          throw new RadkitError(`entities lexicon: "${v}" (${group}: ${canonical}) clashes with ${prev.group}: ${prev.text}`, 'ERR_INTERNAL', 'buildLexicon');
        map.set(key, { text: canonical, group });
        maxLen = Math.max(maxLen, toks.length);
      }
    }
  };
  add(ANATOMY, 'biological_structure');
  add(DEVICES, DEVICES_GROUP);
  add(DESCRIPTIONS, 'detailed_description');
  add(DISEASES, 'disease_disorder');
  add(SIGNS, 'sign_symptom');
  return { map, maxLen };
}

const LEXICON = buildLexicon();

// ---------------------------------------------------------------------------------------------
// Extraction

/**
 * Entities of one report, in text order, non-overlapping (longest match first). Negated and hedged
 * mentions are included. `start`/`end` index the input string.
 */
export function extractEntities(report: string): Entity[] {
  if (typeof report !== 'string') throw new ArgumentError(`extractEntities(report): expected a string, got ${typeof report}`, 'ERR_INVALID_ARG', 'extractEntities');
  const toks = tokenize(report);
  const out: Entity[] = [];
  const { map, maxLen } = LEXICON;
  let i = 0;
  while (i < toks.length) {
    // longest run of tokens from i joined by whitespace/hyphen only
    let reach = 1;
    while (reach < maxLen && i + reach < toks.length && JOIN.test(report.slice(toks[i + reach - 1].end, toks[i + reach].start))) reach++;
    let matched = 0;
    for (let len = reach; len >= 1; len--) {
      let key = toks[i].norm;
      for (let k = 1; k < len; k++) key += ' ' + toks[i + k].norm;
      const e = map.get(key);
      if (e) {
        out.push({ text: e.text, group: e.group, start: toks[i].start, end: toks[i + len - 1].end });
        matched = len;
        break;
      }
    }
    i += matched || 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Codebook

export interface TextualCodebook {
  /** Per group, the top-`kappa0` entities by mention count (ties: alphabetical). */
  groups: Record<EntityGroup, Array<{ text: string; count: number }>>;
  /** All groups' keywords, deduplicated, in group order (ENTITY_GROUPS) then frequency order. */
  keywords: string[];
}

/**
 * AdaMatch-Cyclic textual codebook: counts entity mentions over `reports` and keeps the `kappa0`
 * most frequent entities of each group (ties broken alphabetically, by code unit). Deterministic and
 * independent of report order.
 */
export function buildTextualCodebook(reports: Iterable<string>, kappa0 = 200): TextualCodebook {
  if (!Number.isInteger(kappa0) || kappa0 < 0) throw new ArgumentError(`buildTextualCodebook: kappa0 must be a non-negative integer, got ${String(kappa0)}`, 'ERR_INVALID_ARG', 'buildTextualCodebook');
  if (reports == null || typeof (reports as Iterable<string>)[Symbol.iterator] !== 'function')
    throw new ArgumentError('buildTextualCodebook(reports): expected an iterable of strings', 'ERR_INVALID_ARG', 'buildTextualCodebook');
  const counts = {} as Record<EntityGroup, Map<string, number>>;
  for (const g of ENTITY_GROUPS) counts[g] = new Map();
  for (const r of reports) for (const e of extractEntities(r)) counts[e.group].set(e.text, (counts[e.group].get(e.text) ?? 0) + 1);
  const groups = {} as TextualCodebook['groups'];
  const keywords: string[] = [];
  const seen = new Set<string>();
  for (const g of ENTITY_GROUPS) {
    groups[g] = [...counts[g]]
      .map(([text, count]) => ({ text, count }))
      .sort((a, b) => b.count - a.count || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
      .slice(0, kappa0);
    for (const { text } of groups[g]) {
      if (seen.has(text)) continue;
      seen.add(text);
      keywords.push(text);
    }
  }
  return { groups, keywords };
}
