import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, resolveConfig } from '@flotilla/server';
import { loadAgentConfig } from '@flotilla/agent';
import { REPO_ROOT, listFiles, readRepoFile } from './paths.ts';

/** An environment that records every name the code asks it for. */
function recordingEnv(values: Record<string, string> = {}): { env: NodeJS.ProcessEnv; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, key) {
      if (typeof key === 'string') read.add(key);
      return typeof key === 'string' ? values[key] : undefined;
    },
  });
  return { env, read };
}

/** FLOTILLA_* names the server's config loader reads (asked of the real loader, not restated). */
export function serverEnvNames(): Set<string> {
  const { env, read } = recordingEnv();
  loadConfig({ env });
  return read;
}

/** FLOTILLA_* names the agent's config loader reads. */
export function agentEnvNames(): Set<string> {
  const { env, read } = recordingEnv({ FLOTILLA_SERVER_URL: 'http://server.test' });
  loadAgentConfig({ env, argv: [], hostname: () => 'device-1' });
  return read;
}

export function serverPorts(): { http: number; mqtt: number; mqttWs: number | null } {
  const c = resolveConfig({});
  return { http: c.http.port, mqtt: c.mqtt.tcpPort, mqttWs: c.mqtt.wsPort };
}

export function agentLocalApiPort(): number {
  const { env } = recordingEnv({ FLOTILLA_SERVER_URL: 'http://server.test' });
  return loadAgentConfig({ env, argv: [], hostname: () => 'device-1' }).localApi.port;
}

/** Workspace packages by name, with their folder and production dependencies. */
export interface WorkspacePackage {
  name: string;
  dir: string;
  dependencies: string[];
  scripts: Record<string, string>;
}

export function workspacePackages(): Map<string, WorkspacePackage> {
  const dirs = ['server', 'agent', 'test', 'deploy', ...listFiles('packages', (p) => /^packages\/[^/]+\/package\.json$/.test(p)).map((p) => p.replace(/\/package\.json$/, ''))];
  const out = new Map<string, WorkspacePackage>();
  for (const dir of dirs) {
    if (!existsSync(join(REPO_ROOT, dir, 'package.json'))) continue;
    const pkg = JSON.parse(readRepoFile(`${dir}/package.json`)) as { name: string; dependencies?: Record<string, string>; scripts?: Record<string, string> };
    out.set(pkg.name, { name: pkg.name, dir, dependencies: Object.keys(pkg.dependencies ?? {}), scripts: pkg.scripts ?? {} });
  }
  return out;
}

/** The package and every workspace package it needs at run time (production dependencies, transitively). */
export function runtimeClosure(name: string): WorkspacePackage[] {
  const all = workspacePackages();
  const seen = new Map<string, WorkspacePackage>();
  const visit = (n: string): void => {
    const pkg = all.get(n);
    if (!pkg || seen.has(n)) return;
    seen.set(n, pkg);
    pkg.dependencies.forEach(visit);
  };
  visit(name);
  return [...seen.values()];
}
