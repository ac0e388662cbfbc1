import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentEnvNames } from './support/components.ts';
import { REPO_ROOT, readRepoFile } from './support/paths.ts';

/** systemd unit file: section → key → values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(readRepoFile('deploy/systemd/flotilla-agent.service'));
const service = unit.get('Service')!;
const one = (key: string) => service.get(key)?.at(-1);

describe('systemd unit for a bare Jetson', () => {
  it('runs the agent entry point of this repository as an unprivileged user from an environment file', () => {
    expect(one('User')).toBe('flotilla');
    expect(one('EnvironmentFile')).toBe('/etc/flotilla/agent.env');
    const exec = one('ExecStart')!.split(/\s+/);
    const entry = exec.find((a) => a.startsWith('/opt/flotilla/'))!.replace('/opt/flotilla/', '');
    expect(existsSync(join(REPO_ROOT, entry)), entry).toBe(true);
  });

  it('restarts on failure but not on a configuration error (exit 78)', () => {
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('78');
    expect(readRepoFile('agent/src/main.ts')).toMatch(/EXIT_CONFIG = 78/);
  });

  it('keeps its data folder where the agent expects it and hardens the rest', () => {
    expect(one('StateDirectory')).toBe('flotilla-agent');
    expect(service.get('Environment')).toContain('FLOTILLA_DATA_DIR=/var/lib/flotilla-agent');
    for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['CapabilityBoundingSet', '']] as const) {
      expect(one(key), key).toBe(value);
    }
  });

  it('the example environment file sets only variables the agent reads', () => {
    const known = agentEnvNames();
    const lines = readRepoFile('deploy/systemd/agent.env.example').split('\n').map((l) => l.replace(/^#\s*/, '').trim());
    const names = lines.map((l) => /^(FLOTILLA_[A-Z0-9_]+)=/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
    expect(names.length).toBeGreaterThan(4);
    for (const n of names) expect(known.has(n), n).toBe(true);
    for (const env of service.get('Environment') ?? []) {
      const name = env.split('=')[0]!;
      if (name.startsWith('FLOTILLA_')) expect(known.has(name), name).toBe(true);
    }
  });
});
