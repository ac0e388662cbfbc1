import onnxProto from 'onnx-proto';
import { ElemType, rawBytes } from './tensor.ts';
import type { ConstTensor, ElemTypeName } from './tensor.ts';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

/** IR version 8 with opset 13: loadable by every onnxruntime release Flotilla supports. */
export const IR_VERSION = 8;
export const OPSET = 13;

/** A dimension: a fixed size, or a name for a dynamic one (the batch, usually). */
export type Dim = number | string;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'float'; value: number };

export const intAttr = (value: number): AttrValue => ({ kind: 'int', value });
export const intsAttr = (value: readonly number[]): AttrValue => ({ kind: 'ints', value });
export const floatAttr = (value: number): AttrValue => ({ kind: 'float', value });

function valueInfo(name: string, type: ElemTypeName, shape: readonly Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ElemType[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, attr: AttrValue): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (attr.kind) {
    case 'int':
      return { name, type: T.INT, i: attr.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...attr.value] };
    case 'float':
      return { name, type: T.FLOAT, f: attr.value };
  }
}

/**
 * Assembles one ONNX graph node by node. It checks nothing about the graph's validity on purpose:
 * the bad builds rely on being able to write graphs that onnxruntime refuses.
 */
export class GraphBuilder {
  readonly #name: string;
  readonly #inputs: OnnxTypes.IValueInfoProto[] = [];
  readonly #outputs: OnnxTypes.IValueInfoProto[] = [];
  readonly #initializers: OnnxTypes.ITensorProto[] = [];
  readonly #nodes: OnnxTypes.INodeProto[] = [];
  #counter = 0;

  constructor(name: string) {
    this.#name = name;
  }

  input(name: string, type: ElemTypeName, shape: readonly Dim[]): string {
    this.#inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElemTypeName, shape: readonly Dim[]): string {
    this.#outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Adds a constant and returns its name. */
  constant(name: string, tensor: ConstTensor): string {
    this.#initializers.push({ name, dataType: ElemType[tensor.type], dims: [...tensor.dims], rawData: rawBytes(tensor) });
    return name;
  }

  /**
   * Adds a node. `outputs` may be names, or a count for fresh intermediate names.
   * Returns the output names.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attrs: Record<string, AttrValue> = {}): string[] {
    const id = this.#counter++;
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}_${id}_${i}`) : [...outputs];
    this.#nodes.push({
      name: `${opType}_${id}`,
      opType,
      input: [...inputs],
      output: outNames,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outNames;
  }

  /** Like `node` for the common single-output case. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const [out] = this.node(opType, inputs, output === undefined ? 1 : [output], attrs);
    return out as string;
  }

  /** Serializes the graph into ONNX model bytes. */
  toBytes(meta: { producerVersion: string; docString?: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'flotilla-modelkit',
      producerVersion: meta.producerVersion,
      docString: meta.docString ?? '',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.#name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
