/**
 * Exports a trained model to ONNX with standardization inside the graph (explicit Sub/Div; see
 * shared/onnx/standardized-mlp.ts for why it is not folded). Input `features` [batch, d]; output
 * `probabilities` [batch, k] (classifier, softmax) or `prediction` [batch, 1] (regressor, linear).
 */
import { encodeStandardizedMlp } from '../../shared/onnx/standardized-mlp.js';
import type { TensorSpec } from '../../shared/tensors.js';
import type { TrainedModel } from './train.js';

export const INPUT_NAME = 'features';
export const OPSET = 13;

export interface ExportedModel {
  onnx: Uint8Array;
  inputSpec: TensorSpec;
  outputSpec: TensorSpec;
  opset: number;
}

export function outputName(kind: TrainedModel['kind']): string {
  return kind === 'classification' ? 'probabilities' : 'prediction';
}

export function exportOnnx(model: TrainedModel): ExportedModel {
  const d = model.featureNames.length;
  const k = model.layers[model.layers.length - 1]!.outFeatures;
  const output = outputName(model.kind);
  const onnx = encodeStandardizedMlp({
    mean: model.standardization.mean,
    std: model.standardization.std,
    layers: model.layers,
    softmax: model.kind === 'classification',
    inputName: INPUT_NAME,
    outputName: output,
    opset: OPSET,
    // Deterministic: no timestamps, so identical weights give identical bytes.
    docString: `edgefleet ${model.kind} MLP; features: ${model.featureNames.join(',')}${
      model.classes ? `; classes: ${model.classes.join(',')}` : ''
    }`,
  });
  return {
    onnx,
    inputSpec: { name: INPUT_NAME, dtype: 'float32', shape: ['batch', d] },
    outputSpec: { name: output, dtype: 'float32', shape: ['batch', k] },
    opset: OPSET,
  };
}
