/** Reported by `GET /v2` and in logs. */
export const POOL_VERSION = '0.1.0';
