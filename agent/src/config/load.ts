import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { FlotillaError, checkConfig, deepFreeze } from '@flotilla/protocol';
import { AgentConfigSchema, type AgentConfig, type FrozenAgentConfig } from './schema.ts';
import { applyEnv } from './env.ts';
import { deviceIdFromHostname } from './hostname.ts';

export interface LoadConfigOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
  hostname?: () => string;
}

function invalid(message: string, details?: unknown): FlotillaError {
  return new FlotillaError('FLT_AGENT_CONFIG_INVALID', `invalid agent configuration: ${message}`, details);
}

/** `--config <path>`, `--config=<path>`, else FLOTILLA_AGENT_CONFIG, else no file. */
export function configPathFrom(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw invalid('--config needs a path');
      return next;
    }
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return env.FLOTILLA_AGENT_CONFIG || undefined;
}

function readConfigFile(path: string, readFile: (path: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw invalid(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid(`${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Validates a raw config object (file and env already merged): fills defaults, checks, freezes. */
export function validateAgentConfig(raw: Record<string, unknown>): FrozenAgentConfig {
  const { value: candidate, problems } = checkConfig(AgentConfigSchema, raw);
  if (problems.length > 0) throw invalid(problems.join('; '), { problems });
  const range = (candidate as AgentConfig).drift.inputRange;
  if (!((range[1] as number) > (range[0] as number))) {
    const problem = `drift.inputRange must be [lo, hi] with lo < hi, got [${range.join(', ')}]`;
    throw invalid(problem, { problems: [problem] });
  }
  return deepFreeze(candidate as AgentConfig) as FrozenAgentConfig;
}

/**
 * Loads the agent config: JSON file (optional), FLOTILLA_* env on top, device id defaulting to the
 * sanitized hostname. Throws FlotillaError FLT_AGENT_CONFIG_INVALID with every problem listed.
 */
export function loadAgentConfig(opts: LoadConfigOptions = {}): FrozenAgentConfig {
  const env = opts.env ?? process.env;
  const path = configPathFrom(opts.argv ?? process.argv.slice(2), env);
  const raw = path ? readConfigFile(path, opts.readFile ?? ((p) => readFileSync(p, 'utf8'))) : {};
  applyEnv(raw, env);
  if (raw.deviceId === undefined) raw.deviceId = deviceIdFromHostname((opts.hostname ?? osHostname)());
  return validateAgentConfig(raw);
}
