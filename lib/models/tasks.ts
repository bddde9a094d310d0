/** What a model kind is evaluated on: generated reports, or image-report retrieval (alignment models). */
export type ModelTask = 'generation' | 'retrieval';

const RETRIEVAL_KINDS = new Set(['adamatch']);

export function modelTask(kind: string): ModelTask {
  return RETRIEVAL_KINDS.has(kind) ? 'retrieval' : 'generation';
}
