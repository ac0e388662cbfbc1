import { readRepoFile } from './paths.ts';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  file: string;
  /** Instructions before the first FROM (global ARGs). */
  preamble: Instruction[];
  stages: Stage[];
}

/** Just enough of the Dockerfile grammar for these checks: comments, line continuations, stages. */
export function parseDockerfile(file: string): Dockerfile {
  const lines = readRepoFile(file).split('\n');
  const instructions: Instruction[] = [];
  let buffer = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (buffer === '' && (line === '' || line.startsWith('#'))) return;
    if (buffer !== '' && line.startsWith('#')) return;
    if (buffer === '') start = i + 1;
    const continued = line.endsWith('\\');
    buffer += (buffer ? ' ' : '') + (continued ? line.slice(0, -1).trim() : line);
    if (!continued) {
      const m = /^(\S+)\s*(.*)$/.exec(buffer)!;
      instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: start });
      buffer = '';
    }
  });
  const out: Dockerfile = { file, preamble: [], stages: [] };
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${file}:${ins.line}: cannot read FROM ${ins.args}`);
      out.stages.push({ base: m[1]!, name: m[2], instructions: [] });
    } else if (out.stages.length === 0) out.preamble.push(ins);
    else out.stages[out.stages.length - 1]!.instructions.push(ins);
  }
  return out;
}

export function finalStage(df: Dockerfile): Stage {
  const last = df.stages[df.stages.length - 1];
  if (!last) throw new Error(`${df.file} has no FROM`);
  return last;
}

export function stageNamed(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((st) => st.name === name);
  if (!s) throw new Error(`${df.file} has no stage ${name}`);
  return s;
}

/** The stage a stage is built FROM, followed back through the file (FROM node-base AS build). */
export function lineage(df: Dockerfile, stage: Stage): Stage[] {
  const chain = [stage];
  let current = stage;
  for (;;) {
    const parent = df.stages.find((s) => s.name !== undefined && s.name === current.base);
    if (!parent || chain.includes(parent)) return chain;
    chain.push(parent);
    current = parent;
  }
}

export function all(stages: Stage[], keyword: string): Instruction[] {
  return stages.flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
}

/** ENV KEY=value pairs (quoted values allowed) of the given instructions. */
export function envPairs(instructions: Instruction[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of instructions) {
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
  }
  return env;
}

/** The exec-form array of CMD / ENTRYPOINT / HEALTHCHECK CMD. */
export function execForm(args: string): string[] {
  const at = args.indexOf('[');
  if (at < 0) throw new Error(`not in exec form: ${args}`);
  return JSON.parse(args.slice(at)) as string[];
}
