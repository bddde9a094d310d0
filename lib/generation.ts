/**
 * The one generation contract of radkit: every search (a report generator's `Model.generate`, a raw
 * transformer's `nn.generate`) takes these options, and one native reader
 * (native/binding/generate_options.cc) checks them and fills the defaults named here.
 */
export interface GenerateOptions<S extends SystemOptions = SystemOptions> {
  /** Default: 'beam' when beams > 1, else 'greedy'. */
  method?: 'greedy' | 'beam' | 'sample';
  /** Beam size (default 1). */
  beams?: number;
  /** Most generated tokens, EOS included (default min(60, room the model has)). */
  maxLength?: number;
  /** EOS is blocked until this many tokens were generated (default 0). */
  minLength?: number;
  /** Beam score = sum(log p) / length^lengthPenalty (default 1; 0 = raw sum). */
  lengthPenalty?: number;
  /** Beam: finish a source once `beams` hypotheses ended (default false: once no running one can still win). */
  earlyStopping?: boolean;
  /** > 0: no n-gram of this size occurs twice in a hypothesis (blocked inside the beam, before ranking); default 0. */
  noRepeatNgram?: number;
  /** CTRL repetition penalty on tokens already generated in a hypothesis (default 1 = off). */
  repetitionPenalty?: number;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Sampling: keep the k most likely tokens (default 0 = all). */
  topK?: number;
  /** Sampling: keep the smallest set of tokens whose probability reaches p (default 1 = all). */
  topP?: number;
  /** Sampling seed (a private generator); without it the global generator (`radkit.manualSeed`) is used. */
  seed?: number;
  /** Also return the per-step source attention (raw encoder-decoder transformers). */
  returnAttention?: boolean;
  /** Overrides the model's EOS id. */
  eosId?: number;
  /** The same limit as maxLength, by the name causal LMs use (give one of the two). */
  maxNewTokens?: number;
  /** The same as minLength (EOS and stop ids are blocked until this many tokens were generated). */
  minNewTokens?: number;
  /** More token ids that end a sequence like EOS. */
  stopIds?: number[];
  /**
   * Constrained decoding: [begin, end) id ranges the search may choose from (EOS and stopIds stay
   * allowed); probabilities are renormalised over them.
   */
  allowedTokens?: Array<[number, number]>;
  /**
   * Switches only one system understands, checked by that system (XProNet: `{ labelSource:
   * 'oracle' | 'predicted' | 'none' }`). A model kind's generation defaults may set them.
   */
  systemOptions?: S;
}

export type SystemOptions = Record<string, string | number | boolean>;

/** Layers `options` over `defaults` (systemOptions merged key by key); undefined values do not override. */
export function withGenerateDefaults<S extends SystemOptions>(defaults: GenerateOptions<S> | undefined, options: GenerateOptions<S> | undefined): GenerateOptions<S> {
  const out: Record<string, unknown> = { ...(defaults ?? {}) };
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined && k !== 'systemOptions') out[k] = v;
  const sys = { ...(defaults?.systemOptions ?? {}) } as Record<string, unknown>;
  for (const [k, v] of Object.entries(options?.systemOptions ?? {})) if (v !== undefined) sys[k] = v;
  // A caller choosing greedy or sampling search does not inherit a default beam width.
  if (options?.method !== undefined && options.method !== 'beam' && options.beams === undefined) delete out.beams;
  if (Object.keys(sys).length) out.systemOptions = sys;
  else delete out.systemOptions;
  return out as GenerateOptions<S>;
}
