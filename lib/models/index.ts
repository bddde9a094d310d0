export { Model, TensorBatch, type GenerateOptions, type Generation, type StepResult } from './model.js';
export { xpronet, xpronetConfig, type XProNetOptions } from './xpronet.js';
