import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentEnvNames, agentLocalApiPort, runtimeClosure, serverEnvNames, serverPorts } from './support/components.ts';
import { all, envPairs, execForm, finalStage, lineage, parseDockerfile, type Dockerfile } from './support/dockerfile.ts';
import { componentOf, parseFlotillaImage } from './support/images.ts';
import { allContainers, workloads } from './support/k8s.ts';
import { REPO_ROOT, listFiles, readRepoFile } from './support/paths.ts';
import { poolConfigFacts } from './support/pool.ts';

const PACKAGE_OF = { server: '@flotilla/server', agent: '@flotilla/agent', pool: '@flotilla/pool' } as const;
const dockerfiles = listFiles('deploy/docker', (p) => p.endsWith('.Dockerfile'));
const pnpmPin = (JSON.parse(readRepoFile('package.json')) as { packageManager: string }).packageManager.replace(/^pnpm@/, '');

function imageName(file: string): string {
  return file.replace(/^deploy\/docker\//, '').replace(/\.Dockerfile$/, '');
}

async function expectedPorts(component: 'server' | 'agent' | 'pool'): Promise<number[]> {
  if (component === 'server') {
    const s = serverPorts();
    return [s.http, s.mqtt, s.mqttWs!];
  }
  if (component === 'agent') return [agentLocalApiPort()];
  const pool = await poolConfigFacts();
  return pool ? [pool.port] : [8000];
}

function runtimeText(df: Dockerfile): string {
  return lineage(df, finalStage(df))
    .flatMap((s) => s.instructions.map((i) => `${i.keyword} ${i.args}`))
    .join('\n');
}

describe('Dockerfiles', () => {
  it('there is one per Flotilla image: server, agent, agent-jetson and pool', () => {
    expect(dockerfiles.map(imageName).sort()).toEqual(['agent', 'agent-jetson', 'pool', 'server']);
  });

  it('every ghcr.io/flotilla image of the manifests is built by a Dockerfile whose build command names it', () => {
    const images = new Set(workloads().flatMap((w) => allContainers(w).map((c) => c.image)));
    for (const image of images) {
      const img = parseFlotillaImage(image);
      if (!img) continue;
      expect(existsSync(join(REPO_ROOT, img.dockerfile)), img.dockerfile).toBe(true);
      expect(readRepoFile(img.dockerfile), `${img.dockerfile} builds ${image}`).toContain(`-t ${image} `);
    }
  });

  for (const file of dockerfiles) {
    describe(file, () => {
      const df = parseDockerfile(file);
      const component = componentOf(imageName(file));
      const pkg = PACKAGE_OF[component];
      const runtime = lineage(df, finalStage(df));

      it('is multi-stage, with a build stage that installs with the pinned pnpm and a frozen lockfile, filtered to its package', () => {
        expect(df.stages.length).toBeGreaterThanOrEqual(2);
        const runs = all(df.stages, 'RUN').map((r) => r.args);
        expect(runs.some((r) => r.includes(`pnpm@${pnpmPin}`)), `pnpm@${pnpmPin}`).toBe(true);
        const install = runs.find((r) => /pnpm install/.test(r));
        expect(install).toMatch(/--frozen-lockfile/);
        expect(install).toContain(`--filter "${pkg}..."`);
        expect(install).toMatch(/--prod/);
      });

      it('skips the onnxruntime-node GPU download during install', () => {
        expect(envPairs(all(df.stages, 'ENV')).get('ONNXRUNTIME_NODE_INSTALL')).toBe('skip');
      });

      it('copies into the runtime stage every workspace package its component needs at run time', () => {
        const copies = all([finalStage(df)], 'COPY').map((c) => c.args);
        for (const dep of runtimeClosure(pkg)) expect(copies.some((c) => c.includes(`/src/${dep.dir} ./${dep.dir}`)), `${file} copies ${dep.dir}`).toBe(true);
        expect(copies.some((c) => c.includes('/src/node_modules ./node_modules'))).toBe(true);
      });

      it('runs as a non-root user', () => {
        const users = all(runtime, 'USER').map((u) => u.args);
        expect(users.length).toBeGreaterThan(0);
        expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
      });

      it('exposes exactly the ports its component listens on by default', async () => {
        const exposed = all(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, '')));
        expect(exposed.sort()).toEqual((await expectedPorts(component)).sort());
      });

      it('has a HEALTHCHECK against a route of its component on its default port', async () => {
        const hc = all(runtime, 'HEALTHCHECK');
        expect(hc).toHaveLength(1);
        const script = execForm(hc[0]!.args).join(' ');
        const port = (await expectedPorts(component))[0]!;
        expect(script).toContain(`||${port})`);
        const path = /\+'(\/[^']+)'/.exec(script)?.[1];
        const expected = component === 'server' ? '/healthz' : '/v2/health/';
        expect(path).toContain(expected);
      });

      it('starts an entry file that exists in the repository', () => {
        const cmd = execForm(all(runtime, 'CMD').at(-1)!.args);
        const entry = cmd.find((a) => /\.(ts|mjs)$/.test(a));
        expect(entry, `${file} CMD`).toBeDefined();
        expect(existsSync(join(REPO_ROOT, entry!)), entry).toBe(true);
      });

      it('sets only FLOTILLA_* variables its component reads', async () => {
        const names = [...envPairs(all(runtime, 'ENV')).keys()].filter((n) => n.startsWith('FLOTILLA_'));
        const known = component === 'server' ? serverEnvNames() : component === 'agent' ? agentEnvNames() : (await poolConfigFacts())?.envNames;
        expect(known, `${component} env names`).toBeDefined();
        for (const n of names) expect(known!.has(n), `${file}: ${n}`).toBe(true);
      });

      it('listens on all interfaces inside the container (probes reach the pod IP)', () => {
        const text = runtimeText(df);
        const hostVar = component === 'server' ? 'FLOTILLA_HTTP_HOST' : component === 'agent' ? 'FLOTILLA_LOCAL_API_HOST' : 'FLOTILLA_POOL_HOST';
        expect(text).toContain(`${hostVar}=0.0.0.0`);
      });
    });
  }

  it('the Jetson image is built on an L4T JetPack base and installs Node 20 checked against its checksums', () => {
    const df = parseDockerfile('deploy/docker/agent-jetson.Dockerfile');
    const l4t = df.preamble.find((i) => i.keyword === 'ARG' && i.args.startsWith('L4T_IMAGE='))!.args;
    expect(l4t).toMatch(/^L4T_IMAGE=nvcr\.io\/nvidia\/l4t-jetpack:r36\./);
    expect(df.preamble.find((i) => i.args.startsWith('NODE_VERSION='))!.args).toMatch(/^NODE_VERSION=20\./);
    expect(readRepoFile('deploy/docker/agent-jetson.Dockerfile')).toMatch(/sha256sum -c/);
  });

  it('the generic images start from node:20-bookworm-slim', () => {
    for (const name of ['server', 'agent', 'pool']) {
      const df = parseDockerfile(`deploy/docker/${name}.Dockerfile`);
      expect(df.preamble.find((i) => i.args.startsWith('NODE_IMAGE='))!.args, name).toBe('NODE_IMAGE=node:20-bookworm-slim');
    }
  });
});
