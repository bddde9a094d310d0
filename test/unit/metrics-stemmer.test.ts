import { describe, expect, it } from 'vitest';
import { snowballEnglishStem } from '../../lib/metrics/stemmer.js';

// Pairs from the Snowball English ("Porter2") sample vocabulary and its stemmed output.
const PAIRS =
  'consign consign consigned consign consigning consign consignment consign consist consist consisted consist ' +
  'consistency consist consistent consist consistently consist consisting consist consists consist ' +
  'consolation consol consolations consol consolatory consolatori console consol consoled consol consoles consol ' +
  'consolidate consolid consolidated consolid consolidating consolid consoling consol consolingly consol ' +
  'consols consol consonant conson consort consort consorted consort consorting consort conspicuous conspicu ' +
  'conspicuously conspicu conspiracy conspiraci conspirator conspir conspirators conspir conspire conspir ' +
  'conspired conspir conspiring conspir constable constabl constables constabl constance constanc ' +
  'constancy constanc constant constant knack knack knackeries knackeri knacks knack knag knag knave knave ' +
  'knaves knave knavish knavish kneaded knead kneading knead knee knee kneel kneel kneeled kneel kneeling kneel ' +
  'kneels kneel knees knee knell knell knelt knelt knew knew knick knick knif knif knife knife knight knight ' +
  'knightly knight knights knight knit knit knits knit knitted knit knitting knit knives knive knob knob ' +
  'knobs knob knock knock knocked knock knocker knocker knockers knocker knocking knock knocks knock ' +
  'knopp knopp knot knot knots knot';

describe('snowballEnglishStem (METEOR 1.5 stem module)', () => {
  it('reproduces the Snowball sample vocabulary', () => {
    const t = PAIRS.split(' ');
    for (let i = 0; i < t.length; i += 2) expect([t[i], snowballEnglishStem(t[i])]).toEqual([t[i], t[i + 1]]);
  });

  it('handles the classic rule cases', () => {
    const cases: Record<string, string> = {
      caresses: 'caress', ponies: 'poni', ties: 'tie', cats: 'cat', gas: 'gas', agreed: 'agre', feed: 'feed',
      hopping: 'hop', hoping: 'hope', generously: 'generous', generate: 'generat', relational: 'relat',
      skies: 'sky', dying: 'die', news: 'news', inning: 'inning', succeed: 'succeed', cry: 'cri', by: 'by',
      effusions: 'effus', opacities: 'opac', enlarged: 'enlarg', consolidation: 'consolid', lungs: 'lung',
    };
    for (const [w, s] of Object.entries(cases)) expect([w, snowballEnglishStem(w)]).toEqual([w, s]);
  });
});
