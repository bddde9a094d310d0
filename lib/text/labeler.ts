/**
 * Rule-based CheXpert-style labeler.
 *
 * For each of the 14 CheXpert observations it decides `positive | negative | uncertain | absent`
 * from the report text in three stages, in the spirit of the CheXpert labeler / NegBio:
 *
 *  1. **Mention extraction.** Each observation has mention phrases (e.g. `effusion`, `pleural fluid`
 *     for Pleural Effusion), anatomy + state combinations (`heart size is enlarged`, `widened
 *     mediastinum`) and "normal" statements that are negative by themselves (`heart size is normal`,
 *     `the lungs are clear`, `costophrenic angles are sharp`). Phrases that look like a mention but
 *     are not one (`pericardial effusion`, `Kerley B lines`, `pleural line`) are masked first.
 *  2. **Classification of each mention** inside its sentence, using cue phrases whose scope is the
 *     clause: first negated-uncertainty cues (`cannot exclude`, `not ruled out`), then negation cues
 *     before the mention (`no`, `without`, `negative for`, `free of`, `resolution of`, `removal of`)
 *     or after it (`is not seen`, `has resolved`, `has been removed`), then uncertainty cues
 *     (`possible`, `may represent`, `likely`, `suspicious for`, `concerning for`, `versus`, `or`,
 *     `is suspected`). A cue's scope ends at `but`, `however`, `although`, `which`, `except`,
 *     `there is`, `;` and the like. `no change in`, `no increase in` are not negations.
 *  3. **Aggregation over the report**: positive > uncertain > negative > absent per observation.
 *     `No Finding` is `positive` when no pathology (all observations except No Finding and Support
 *     Devices) is positive or uncertain, as CheXpert does; otherwise `absent`.
 *
 * The labeler reads the whole text it is given; pass the findings/impression sections only if the
 * report also carries an indication ("rule out pneumonia" would be read as uncertain pneumonia).
 */
import { ArgumentError } from '../errors.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type Observation, type ReportLabels } from './chexpert.js';

type Polarity = 'positive' | 'negative' | 'uncertain';

interface MentionRule {
  obs: Observation;
  /** Must have the `d` flag and `g`. If it has a group named `a`, that group is the anchor span. */
  re: RegExp;
  /** A fixed polarity for "normal" statements (e.g. "heart size is normal" -> negative). */
  fixed?: Polarity;
}

interface Span {
  start: number;
  end: number;
}

interface Mention extends Span {
  obs: Observation;
  fixed?: Polarity;
}

type CueKind = 'negpre' | 'negpost' | 'uncpre' | 'uncpost' | 'uncneg' | 'uncboth';

interface Cue extends Span {
  kind: CueKind;
}

const w = (s: string) => `\\b(?:${s})\\b`;
const rx = (s: string) => new RegExp(s, 'dg');

// ---------------------------------------------------------------------------------------------
// Mentions

const HEART = 'heart(?: size)?|size of the heart|cardiac (?:silhouette|size|contours?|shadow|outline)';
const MEDIA =
  'cardio-?mediastinal (?:silhouette|contours?|size|shadow|outline)|mediastin(?:um|al (?:silhouette|contours?|width|shadow|outline))|superior mediastinum|mediastinal and hilar contours';
const ENLARGED = 'enlarged|enlargement|large|increased|prominent|widened|widening';
const NORMALP = 'normal(?! ?-?appearing)|within normal limits|unremarkable|upper limits of normal|top[- ]normal';
// a short run of words between an anatomy term and its state ("is mildly", "appears to be")
const GAP = '(?:[\\w-]+ ){0,4}?';

const RULES: MentionRule[] = [
  // Enlarged Cardiomediastinum
  { obs: 'Enlarged Cardiomediastinum', re: rx(w('(?<a>enlarged|widened|widening of the) (?:' + MEDIA + ')')) },
  { obs: 'Enlarged Cardiomediastinum', re: rx(w('(?:' + MEDIA + ') ' + GAP + '(?<a>enlarged|widened|widening|enlargement|prominent)')) },
  { obs: 'Enlarged Cardiomediastinum', re: rx(w('(?<a>mediastinal (?:widening|enlargement)|enlarged cardiomediastinum|widened mediastinum)')) },
  { obs: 'Enlarged Cardiomediastinum', re: rx(w('(?:' + MEDIA + ') ' + GAP + '(?<a>' + NORMALP + ')')), fixed: 'negative' },
  { obs: 'Enlarged Cardiomediastinum', re: rx(w('(?<a>normal) (?:[\\w-]+ ){0,3}?(?:' + MEDIA + ')')), fixed: 'negative' },
  // Cardiomegaly
  { obs: 'Cardiomegaly', re: rx(w('(?<a>cardiomegaly|cardiac enlargement)')) },
  { obs: 'Cardiomegaly', re: rx(w('(?<a>borderline) (?:' + HEART + ')')), fixed: 'uncertain' },
  { obs: 'Cardiomegaly', re: rx(w('(?:' + HEART + ') ' + GAP + '(?<a>borderline)(?! enlarge)')), fixed: 'uncertain' },
  { obs: 'Cardiomegaly', re: rx(w('(?<a>enlarged|enlargement of the|large|increased) (?:' + HEART + ')')) },
  { obs: 'Cardiomegaly', re: rx(w('(?:' + HEART + ') ' + GAP + '(?<a>' + ENLARGED + ')')) },
  { obs: 'Cardiomegaly', re: rx(w('(?:' + HEART + ') ' + GAP + '(?<a>' + NORMALP + ')')), fixed: 'negative' },
  { obs: 'Cardiomegaly', re: rx(w('(?<a>normal) (?:' + HEART + ')')), fixed: 'negative' },
  // Lung Opacity
  {
    obs: 'Lung Opacity',
    re: rx(w('(?<a>opacit(?:y|ies)|opacification|opacified|infiltrat(?:e|es|ion|ive)|densit(?:y|ies)|haziness|hazy|air ?space (?:disease|process|opacit(?:y|ies))|ground[- ]glass)')),
  },
  { obs: 'Lung Opacity', re: rx(w('(?:lungs?|lung fields?) ' + GAP + '(?<a>clear)')), fixed: 'negative' },
  { obs: 'Lung Opacity', re: rx(w('(?<a>clear) lungs')), fixed: 'negative' },
  // Lung Lesion
  {
    obs: 'Lung Lesion',
    re: rx(w('(?<a>nodules?|nodular(?:ity)?|mass(?:es)?|lesions?|tumou?rs?|neoplasms?|carcinoma|cancer|malignancy|metastas(?:is|es)|metastatic disease)')),
  },
  // Edema
  {
    obs: 'Edema',
    re: rx(w('(?<a>edema|oedema|(?:pulmonary )?vascular congestion|pulmonary congestion|congestive heart failure|chf|fluid overload|cephalization|kerley b lines)')),
  },
  // Consolidation
  { obs: 'Consolidation', re: rx(w('(?<a>consolidat(?:ion|ions|ive|ed))')) },
  // Pneumonia
  { obs: 'Pneumonia', re: rx(w('(?<a>(?:broncho)?pneumonias?|infection|infectious (?:process|etiology))')) },
  // Atelectasis
  { obs: 'Atelectasis', re: rx(w('(?<a>atelecta(?:sis|ses|tic)|collapsed?)')) },
  // Pneumothorax
  { obs: 'Pneumothorax', re: rx(w('(?<a>(?:hydro)?pneumothora(?:x|ces)|ptx)')) },
  // Pleural Effusion
  { obs: 'Pleural Effusion', re: rx(w('(?<a>effusions?|pleural fluid|hydrothorax|hydropneumothorax)')) },
  { obs: 'Pleural Effusion', re: rx(w('(?<a>sharp) costophrenic angles?')), fixed: 'negative' },
  { obs: 'Pleural Effusion', re: rx(w('costophrenic (?:angles?|sulc(?:us|i)) ' + GAP + '(?<a>sharp|clear)')), fixed: 'negative' },
  { obs: 'Pleural Effusion', re: rx(w('(?<a>blunting|blunted)')), fixed: 'uncertain' },
  // Pleural Other
  {
    obs: 'Pleural Other',
    re: rx(w('(?<a>pleural (?:thickening|scarring|plaques?|calcifications?)|thickening of the pleura|pleural-based (?:thickening|scarring)|fibrothorax|apical (?:pleural )?(?:cap|capping|thickening))')),
  },
  // Fracture
  { obs: 'Fracture', re: rx(w('(?<a>fractures?|fractured|fx)')) },
  // Support Devices
  {
    obs: 'Support Devices',
    re: rx(
      w(
        '(?<a>pacemakers?|pacers?|(?:a)?icd|defibrillators?|(?:pacing |pacer )?leads|lines?|catheters?|tubes?|picc|port-a-cath|(?:infusion |chest )?port|swan-ganz|drains?|stents?|sternotomy wires|sternal wires|wires|clips|prosthe(?:sis|tic valve)|hardware|devices?|cannula)',
      ),
    ),
  },
];

/** Phrases masked (per observation) before mentions are searched: look-alikes that are not mentions. */
const MASKS: Partial<Record<Observation, RegExp>> = {
  'Pleural Effusion': rx(w('pericardial effusions?|joint effusions?')),
  'Support Devices': rx(
    w('kerley b lines|(?:visceral |visible )?pleural lines?|midline|line of|lines? of|septal lines|fissure lines?|in line|nasogastric tube is not|tube feeding'),
  ),
  'Lung Opacity': rx(w('bone density|bony density|soft[- ]tissue density')),
  'Lung Lesion': rx(w('mass effect|soft tissue lesion|lytic lesions?|sclerotic lesions?|osseous lesions?|bony lesions?|skin lesions?')),
  Edema: rx(w('(?:soft[- ]tissue|subcutaneous) edema')),
  Pneumonia: rx(w('urinary tract infection|line infection')),
  Atelectasis: rx(w('vertebral (?:body )?collapse|compression collapse')),
};

// ---------------------------------------------------------------------------------------------
// Cues

interface CueRule {
  kind: CueKind;
  re: RegExp;
}

// Order matters only for overlaps: earlier rules claim text first.
const CUES: CueRule[] = [
  // not a negation: "no change in the effusion", "no interval increase"
  {
    kind: 'uncneg',
    re: rx(
      w(
        'can ?not (?:be )?(?:entirely |completely |definitely )?(?:excluded|exclude|ruled out|rule out)|(?:is |are )?not (?:be )?(?:entirely |completely |definitely )?(?:excluded|ruled out)|difficult to (?:exclude|rule out)|could not be excluded|cannot be entirely excluded|not (?:entirely |completely )?clear|may not be|no definite evidence against',
      ),
    ),
  },
  {
    kind: 'negpost',
    re: rx(
      w(
        '(?:is|are|was|were|has been|have been)? ?(?:not|no longer) (?:well |clearly |definitely |convincingly )?(?:seen|identified|visualized|visualised|appreciated|present|evident|demonstrated|detected|noted|observed|apparent|visible|shown)|(?:has|have) (?:since )?(?:resolved|cleared)|(?:is|are|was|were|has been|have been) (?:since )?(?:removed|withdrawn|resolved|absent)',
      ),
    ),
  },
  {
    kind: 'negpre',
    re: rx(
      w(
        'no (?:evidence|signs?|findings?|radiographic evidence|definite evidence|convincing evidence) (?:of|to suggest|for)|negative for|free of|clear of|absence of|without(?: evidence of)?|(?:interval )?(?:resolution|removal|clearing) of|resolved|rather than|no longer|not|no|never|nor|neither',
      ),
    ),
  },
  { kind: 'uncboth', re: rx(w('or|versus|vs\\.?|and\\/or')) },
  {
    kind: 'uncpost',
    re: rx(
      w(
        // "pneumonia is likely" hedges pneumonia; "opacity is likely atelectasis" does not hedge the opacity
        '(?:is|are) (?:suspected|questioned|possible|probable|likely|favou?red|a consideration|considered|suggested)(?=\\s*(?:$|[,;:]|and\\b|but\\b|though\\b|although\\b))|may be present|could be present|is difficult to exclude|can be considered',
      ),
    ),
  },
  {
    kind: 'uncpre',
    re: rx(
      w(
        'possib(?:le|ly)|probabl(?:e|y)|likely|presumed|presumably|questionabl[ey]|question of|suspicious (?:for|of)|suspect(?:ed)?|suspicion (?:for|of)|suggest(?:s|ive of|ing)?|concerning for|concern for|worrisome for|worrisome|may(?: represent| reflect| indicate| be| have)?|might(?: represent| reflect| be)?|could(?: represent| reflect| indicate| be)?|can represent|differential(?: diagnosis)?(?: includes?)?|consider(?:ed)?|consideration of|cannot distinguish|indeterminate|equivocal|borderline|evaluate for|assess for|rule out|r\\/o|to exclude|not clearly distinguished|raises the possibility of|perhaps|uncertain|atypical|superimposed|apparent',
      ),
    ),
  },
];

/** Text that is not a negation though it has `no`/`not` in it. Masked before cues are searched. */
const NOT_NEGATION = rx(
  w(
    'no (?:significant |appreciable |substantial |interval |definite )?(?:change|increase|decrease|improvement|worsening|progression)|not (?:significantly |substantially )?(?:changed|increased|decreased|improved|worsened)|not only|no other|cannot be assessed|not well assessed|not assessed|not included|gap',
  ),
);

/** Scope terminators: a cue does not reach a mention across these. */
const TERMINATOR = new RegExp(
  w(
    'but|however|although|though|which|whereas|while|yet|except|aside from|apart from|other than|with the exception of|there (?:is|are|has been|have been)|is seen|are seen|is noted|are noted|is present|are present|concerning|suggesting|consistent with|compatible with|representing|due to|secondary to|reflecting|likely representing',
  ) + '|[;:]',
);
/** After-mention scope: text between a mention and its post cue must not contain these. */
const POST_TERMINATOR = new RegExp(
  w('but|however|although|though|which|whereas|while|yet|except|there (?:is|are)|with|and the|and there|consistent with|compatible with') + '|[;:,]',
);

const MAX_PRE_WORDS = 14;
const MAX_POST_WORDS = 6;
const MAX_BOTH_WORDS = 2;

function wordCount(s: string): number {
  const t = s.trim();
  return t ? t.split(/\s+/).length : 0;
}

function mask(text: string, re: RegExp): string {
  re.lastIndex = 0;
  return text.replace(re, (m) => ' '.repeat(m.length));
}

function findAll(text: string, re: RegExp): Span[] {
  const out: Span[] = [];
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    const idx = m.indices?.groups?.a ?? [m.index, m.index + m[0].length];
    out.push({ start: idx[0], end: idx[1] });
  }
  return out;
}

/** Lower-cases, joins wrapped lines and splits into sentences (on `.`, `?`, `!`, blank lines; not on decimals). */
export function splitSentences(report: string): string[] {
  const t = report
    .toLowerCase()
    .replace(/\r\n?/g, '\n')
    .replace(/\n\s*\n/g, ' . ')
    .replace(/\s+/g, ' ')
    // "? pneumonia" (questionable pneumonia) as written in many reports
    .replace(/(^|[\s(,])\?\s*(?=[a-z])/g, '$1possible ');
  return t
    .split(/(?<!\d)\.(?!\d)|\.(?=\s|$)|[!?]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function classify(cueMasked: string, m: Mention, cues: Cue[], all: Mention[]): Polarity {
  // "or"/"versus" only hedge the mentions right next to them, not across another mention
  const crossesMention = (a: number, b: number) => all.some((o) => o !== m && o.start >= a && o.end <= b);
  if (m.fixed) {
    // "normal" statements may still be hedged ("heart size is probably normal") - keep them negative
    // unless they are explicitly hedged as a whole; a negated normal ("not normal") is left alone.
    return m.fixed;
  }
  const applies = (c: Cue): boolean => {
    if (c.end <= m.start) {
      // cue before the mention
      if (c.kind === 'negpost' || c.kind === 'uncpost') return false;
      const gap = cueMasked.slice(c.end, m.start);
      if (TERMINATOR.test(gap)) return false;
      const n = wordCount(gap);
      return c.kind === 'uncboth' ? n <= MAX_BOTH_WORDS && !crossesMention(c.end, m.start) : n <= MAX_PRE_WORDS;
    }
    if (c.start >= m.end) {
      // cue after the mention; "or"/"versus" hedge both sides: "atelectasis or pneumonia"
      if (c.kind === 'negpre' || c.kind === 'uncpre') return false;
      const gap = cueMasked.slice(m.end, c.start);
      if (POST_TERMINATOR.test(gap)) return false;
      if (c.kind === 'uncboth') return wordCount(gap) <= MAX_BOTH_WORDS && !crossesMention(m.end, c.start);
      return wordCount(gap) <= MAX_POST_WORDS;
    }
    return false; // overlapping: the cue is part of the mention
  };
  let neg = false;
  let unc = false;
  for (const c of cues) {
    if (!applies(c)) continue;
    if (c.kind === 'uncneg') return 'uncertain';
    if (c.kind === 'negpre' || c.kind === 'negpost') neg = true;
    else unc = true;
  }
  if (neg) return 'negative';
  if (unc) return 'uncertain';
  return 'positive';
}

function findCues(text: string): Cue[] {
  let work = mask(text, NOT_NEGATION);
  const cues: Cue[] = [];
  for (const rule of CUES) {
    rule.re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = rule.re.exec(work)) !== null) {
      if (m[0].length === 0) {
        rule.re.lastIndex++;
        continue;
      }
      let start = m.index;
      let end = m.index + m[0].length;
      // trim leading spaces produced by optional groups
      while (start < end && work[start] === ' ') start++;
      cues.push({ start, end, kind: rule.kind });
    }
    work = mask(work, rule.re);
  }
  return cues;
}

/** Mentions found in one sentence, with their classification. Exposed for debugging and tests. */
export function labelSentence(sentence: string): Array<{ observation: Observation; value: Polarity; text: string }> {
  const cues = findCues(sentence);
  // cue text removed, so that scope checks do not see cue words as terminators
  let cueMasked = mask(sentence, NOT_NEGATION);
  for (const c of cues) cueMasked = cueMasked.slice(0, c.start) + ' '.repeat(c.end - c.start) + cueMasked.slice(c.end);
  const mentions: Mention[] = [];
  const maskedByObs = new Map<Observation, string>();
  for (const rule of RULES) {
    let text = maskedByObs.get(rule.obs);
    if (text === undefined) {
      const mk = MASKS[rule.obs];
      text = mk ? mask(sentence, mk) : sentence;
      maskedByObs.set(rule.obs, text);
    }
    for (const s of findAll(text, rule.re)) {
      if (mentions.some((o) => o.obs === rule.obs && o.start < s.end && s.start < o.end)) continue;
      mentions.push({ obs: rule.obs, start: s.start, end: s.end, fixed: rule.fixed });
    }
  }
  // a cue that is itself a mention's anchor ("clear" in "lungs are clear") must not classify others
  const out: Array<{ observation: Observation; value: Polarity; text: string }> = [];
  for (const m of mentions) {
    const own = cues.filter((c) => !(c.start < m.end && m.start < c.end));
    out.push({ observation: m.obs, value: classify(cueMasked, m, own, mentions), text: sentence.slice(m.start, m.end) });
  }
  return out;
}

const RANK: Record<LabelValue, number> = { absent: 0, negative: 1, uncertain: 2, positive: 3 };

/** An all-`absent` label record. */
export function emptyLabels(): ReportLabels {
  const r = {} as ReportLabels;
  for (const o of CHEXPERT_OBSERVATIONS) r[o] = 'absent';
  return r;
}

/**
 * Merges per-mention values into report labels (positive > uncertain > negative > absent) and sets
 * `No Finding` from the others (positive when no pathology is positive or uncertain, else absent).
 */
export function finalizeLabels(labels: ReportLabels): ReportLabels {
  let anyPathology = false;
  for (const o of CHEXPERT_OBSERVATIONS) {
    if (o === 'No Finding' || o === 'Support Devices') continue;
    if (labels[o] === 'positive' || labels[o] === 'uncertain') anyPathology = true;
  }
  labels['No Finding'] = anyPathology ? 'absent' : 'positive';
  return labels;
}

/** Labels one report: one CheXpert value per observation. Never throws on string input. */
export function label(report: string): ReportLabels {
  if (typeof report !== 'string') throw new ArgumentError(`label(report): expected a string, got ${typeof report}`, 'ERR_INVALID_ARG', 'label');
  const labels = emptyLabels();
  for (const s of splitSentences(report)) {
    for (const m of labelSentence(s)) {
      if (RANK[m.value] > RANK[labels[m.observation]]) labels[m.observation] = m.value;
    }
  }
  return finalizeLabels(labels);
}
