export { Model, TensorBatch, type GenerateOptions, type Generation, type StepResult } from './model.js';
export { xpronet, xpronetConfig, type XProNetOptions } from './xpronet.js';
export { adamatch, adamatchConfig, adamatchTraining, loadTextWeights, bertTextOptions, type AdaMatchOptions } from './adamatch.js';
export { modelTask, type ModelTask } from './tasks.js';
