import { describe, expect, it } from 'vitest';
import { MNIST_IO } from '../../packages/modelkit/src/mnist/export.ts';
import { MNIST_CLASSES, MNIST_PIXELS } from '../../packages/modelkit/src/mnist/dataset.ts';
import { workloads } from './support/k8s.ts';
import { readRepoFile } from './support/paths.ts';

const CONFIG = 'deploy/triton/model_repository/mnist-cloud/config.pbtxt';
const text = readRepoFile(CONFIG).replace(/#.*$/gm, '');

/** The `{ … }` blocks of a repeated field, e.g. input [ { … } ]. */
function blocks(field: string): string[] {
  const m = new RegExp(`\\b${field}\\s*\\[([\\s\\S]*?)\\n\\]`).exec(text);
  if (!m) throw new Error(`${CONFIG} has no ${field}`);
  return [...m[1]!.matchAll(/\{([\s\S]*?)\}/g)].map((b) => b[1]!);
}

function tensor(block: string): { name: string; type: string; dims: number[] } {
  return {
    name: /name:\s*"([^"]+)"/.exec(block)![1]!,
    type: /data_type:\s*(\w+)/.exec(block)![1]!,
    dims: /dims:\s*\[([^\]]*)\]/.exec(block)![1]!.split(',').map((d) => Number(d.trim())),
  };
}

describe('Triton model repository', () => {
  it('serves the model kit cloud classifier under the model folder name with the ONNX Runtime backend', () => {
    expect(/name:\s*"([^"]+)"/.exec(text)![1]).toBe('mnist-cloud');
    expect(/platform:\s*"([^"]+)"/.exec(text)![1]).toBe('onnxruntime_onnx');
  });

  it('names the input and output as the model kit writes them, float32, with the batch dimension left to max_batch_size', () => {
    const maxBatch = Number(/max_batch_size:\s*(\d+)/.exec(text)![1]);
    expect(maxBatch).toBeGreaterThan(1);
    expect(blocks('input').map(tensor)).toEqual([{ name: MNIST_IO.inputName, type: 'TYPE_FP32', dims: [MNIST_PIXELS] }]);
    expect(blocks('output').map(tensor)).toEqual([{ name: MNIST_IO.outputName, type: 'TYPE_FP32', dims: [MNIST_CLASSES] }]);
  });

  it('batches dynamically, with preferred sizes no larger than max_batch_size', () => {
    const maxBatch = Number(/max_batch_size:\s*(\d+)/.exec(text)![1]);
    const dyn = /dynamic_batching\s*\{([\s\S]*?)\}/.exec(text)?.[1];
    expect(dyn).toBeDefined();
    const preferred = /preferred_batch_size:\s*\[([^\]]*)\]/.exec(dyn!)![1]!.split(',').map((n) => Number(n.trim()));
    for (const p of preferred) expect(p).toBeLessThanOrEqual(maxBatch);
    expect(Number(/max_queue_delay_microseconds:\s*(\d+)/.exec(dyn!)![1])).toBeGreaterThan(0);
  });

  it('the Triton Deployment reads the repository it mounts and uses the image tag the README documents', () => {
    const triton = workloads().find((w) => w.metadata.name === 'flotilla-pool-triton')!;
    const c = triton.spec.template.spec.containers[0]!;
    expect(c.image).toMatch(/^nvcr\.io\/nvidia\/tritonserver:/);
    const repoArg = c.args!.find((a) => a.startsWith('--model-repository='))!.split('=')[1]!;
    expect(c.volumeMounts!.map((m) => m.mountPath)).toContain(repoArg);
    expect(readRepoFile('deploy/triton/README.md')).toContain(c.image);
    const ports = Object.fromEntries(c.ports!.map((p) => [p.name, p.containerPort]));
    expect(c.args).toEqual(expect.arrayContaining([`--http-port=${ports.http}`, `--grpc-port=${ports.grpc}`, `--metrics-port=${ports.metrics}`]));
  });
});
