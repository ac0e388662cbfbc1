export { HardExampleStore, type HardExampleFilter } from './hard-example-store.ts';
export { DEFAULT_MAX_INPUT_UPLOAD_BYTES, HardExampleInputStore, type PutInputResult, type StoredInput } from './input-store.ts';
