import { ArgumentError } from '../errors.js';

/**
 * Area under the ROC curve of scores for binary labels (1 positive, 0 negative): the probability
 * that a random positive scores above a random negative, ties counting one half (Mann-Whitney U
 * with mid-ranks; equals sklearn's roc_auc_score). NaN when one class is absent.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new ArgumentError(`rocAuc: ${n} scores but ${labels.length} labels`, 'ERR_INVALID_ARG', 'rocAuc');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const mid = (i + j) / 2 + 1; // 1-based mid-rank of the tie group
    for (let k = i; k <= j; k++) {
      const y = labels[order[k]];
      if (y !== 0 && y !== 1) throw new ArgumentError(`rocAuc: labels must be 0 or 1, got ${y}`, 'ERR_INVALID_ARG', 'rocAuc');
      if (y === 1) {
        pos++;
        rankSum += mid;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}
