import { Type, type Static } from 'typebox';
import { strict } from './common.ts';

const ShortText = Type.String({ maxLength: 256 });
const Bytes = Type.Integer({ minimum: 0 });

export const ExecutionProvider = Type.Union([
  Type.Literal('tensorrt'),
  Type.Literal('cuda'),
  Type.Literal('cpu'),
  Type.Literal('triton'),
]);
export type ExecutionProvider = Static<typeof ExecutionProvider>;

export const GpuInfo = Type.Object(
  {
    name: ShortText,
    /** e.g. "8.7" for Jetson Orin, "8.0" for A100. */
    computeCapability: Type.String({ pattern: '^[0-9]{1,2}\\.[0-9]$' }),
    memoryBytes: Type.Optional(Bytes),
  },
  strict,
);

export const Inventory = Type.Object(
  {
    arch: Type.String({ maxLength: 32 }),
    os: Type.Object({ platform: ShortText, release: ShortText, distro: Type.Optional(ShortText) }, strict),
    cpu: Type.Object({ model: ShortText, cores: Type.Integer({ minimum: 1, maximum: 4096 }) }, strict),
    memoryBytes: Bytes,
    disk: Type.Object({ path: ShortText, totalBytes: Bytes, freeBytes: Bytes }, strict),
    gpu: Type.Union([GpuInfo, Type.Null()]),
    cudaVersion: Type.Optional(Type.String({ maxLength: 32 })),
    tensorrtVersion: Type.Optional(Type.String({ maxLength: 32 })),
    jetpackVersion: Type.Optional(Type.String({ maxLength: 32 })),
    /** Providers that actually created a session on this device, not merely those compiled in. */
    executionProviders: Type.Array(ExecutionProvider, { maxItems: 8, uniqueItems: true }),
    agentVersion: Type.String({ maxLength: 32 }),
    onnxruntimeVersion: Type.Optional(Type.String({ maxLength: 32 })),
  },
  strict,
);
export type Inventory = Static<typeof Inventory>;
