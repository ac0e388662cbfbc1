export { Escalator, type EscalatorOptions, type EscalatedResult, type EscalatorStats } from './escalator.ts';
export { CloudClient, type CloudClientOptions, type CloudInferRequest, type CloudAnswer } from './cloud-client.ts';
export { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.ts';
export { pickEndpoint, type EndpointStatus } from './endpoint-state.ts';
export { confidence, type Confidence } from './confidence.ts';
export { decideAfter, decideBefore, scoreVector, tensorBytes, DEFAULT_BUDGET_MS, type Decision, type Random } from './policy.ts';
export { HARD_EXAMPLE_EVENT, MAX_EXAMPLE_INPUT_BYTES, exampleTensor, hardExampleData, type EnqueueEvent } from './hard-example.ts';
export { EscalationMetrics } from './escalation-metrics.ts';
