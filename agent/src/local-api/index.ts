export { buildLocalApi, DEFAULT_BODY_LIMIT, type LocalApiOptions } from './build-local-api.ts';
export { startLocalApi, type LocalApiListenOptions, type RunningLocalApi } from './start-local-api.ts';
export type { LocalInference, LocalInferResult, LocalModelStatus, LocalVersionStatus } from './local-inference.ts';
export { mapError, type ErrorBody } from './error-reply.ts';
