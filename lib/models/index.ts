import './builtins.js';

export { Model, TensorBatch, PRECISIONS, type GenerateOptions, type Generation, type StepResult, type LoadReport, type ArrayTensor, type ModelCreateOptions, type Precision } from './model.js';
export { xpronet, xpronetConfig, XPRONET, type XProNetOptions, type XProNetSystemOptions, type XProNetLabelSource } from './xpronet.js';
export { adamatch, adamatchConfig, adamatchTraining, loadTextWeights, bertTextOptions, ADAMATCH, type AdaMatchOptions } from './adamatch.js';
export { vqgan, vqganConfig, vqganConfigDefaults, loadTamingWeights, encodeImages, decodeCodes, vqEvaluation, VQGAN, type VqganOptions, type VqPreset, type VqCodes } from './vqgan.js';
export {
  registerModelKind,
  unregisterModelKind,
  modelKinds,
  modelKind,
  findModelKind,
  modelTask,
  prepareBatch,
  createOptions,
  type ModelKind,
  type ModelTask,
  type FlagSpec,
  type FlagSpecs,
  type FlagValues,
  type BuildContext,
  type TrainingRecipe,
  type Evaluation,
  type EvaluationOptions,
} from './registry.js';
