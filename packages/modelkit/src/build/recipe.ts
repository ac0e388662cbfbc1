import type { ModelCard } from '../card.ts';

/** What a recipe decides about its card; the builder adds names, hashes and file facts. */
export type CardBody = Omit<ModelCard, 'name' | 'format' | 'irVersion' | 'opset' | 'files' | 'sha256' | 'bytes' | 'generatorHash'>;

/** A built model before it is written: ONNX bytes, its card body, and any extra JSON files by role. */
export interface BuiltModel {
  onnx: Uint8Array;
  card: CardBody;
  extraFiles?: Record<string, { file: string; content: unknown }>;
}

/** Shared work between recipes of one `buildModels` call (a trained network feeds several builds). */
export interface BuildContext {
  memo<T>(key: string, make: () => Promise<T> | T): Promise<T>;
  log(message: string): void;
}

/**
 * How to make one model. `params` holds every knob that changes the output: it goes into the
 * generator hash along with the model kit's source, so changing either forces a rebuild.
 */
export interface Recipe {
  name: string;
  params: Record<string, unknown>;
  build(ctx: BuildContext): Promise<BuiltModel>;
}

export const VERSION_GOOD = '1.0.0';
/** Bad builds look like the next release of the good one, as a broken release would. */
export const VERSION_BAD = '1.1.0';
