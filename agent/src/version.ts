import { createRequire } from 'node:module';

/** The agent's own version, from its package.json (reported in the inventory). */
export const AGENT_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
