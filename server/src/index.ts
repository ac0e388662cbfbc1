export { buildServer, FlotillaServer, readSecretFile, type ListeningAddresses, type ServerDeps } from './server.ts';
export { loadConfig, resolveConfig, configFromEnv } from './config/load.ts';
export type { ServerConfig, ServerConfigInput } from './config/schema.ts';
