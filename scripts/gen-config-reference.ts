/**
 * Writes the configuration reference of docs/operations.md from the config schemas themselves:
 * every key of the server, agent and pool worker configuration with its environment variable,
 * type, default and description.
 *
 *   pnpm exec tsx scripts/gen-config-reference.ts           rewrite the marked sections
 *   pnpm exec tsx scripts/gen-config-reference.ts --check   exit 1 when the doc is stale
 *
 * Types and defaults come from the TypeBox schema objects; descriptions from the `/** … *\/`
 * comments above each key in the schema source (the schemas carry no `description` fields);
 * environment variables by running each component's own env mapping on a probe value and seeing
 * which key it sets, so a variable the loader reads is never left out or attached to the wrong key.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ServerConfigSchema } from '../server/src/config/schema.ts';
import { configFromEnv } from '../server/src/config/load.ts';
import { AgentConfigSchema } from '../agent/src/config/schema.ts';
import { ENV_VARS as AGENT_ENV_VARS } from '../agent/src/config/env.ts';
import { PoolConfigSchema } from '../packages/pool/src/config/schema.ts';
import { POOL_ENV_VARS } from '../packages/pool/src/config/env.ts';

const root = new URL('../', import.meta.url);
export const OPERATIONS_DOC = fileURLToPath(new URL('docs/operations.md', root));

type Schema = Record<string, unknown> & {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  items?: Schema;
  patternProperties?: Record<string, Schema>;
  const?: unknown;
  default?: unknown;
};

/**
 * Descriptions for keys whose schema has no doc comment yet, taken from the component docs. A doc
 * comment in the schema wins; a note for a key the schema no longer has is never printed.
 */
const NOTES: Record<Component['name'], Record<string, string>> = {
  server: {
    dataDir: 'Holds `flotilla.db` (SQLite, WAL), `artifacts/`, `keys/release-signing.pem` and, after a first start without configured tokens, `admin-token` and `enrollment-token`.',
    logLevel: 'pino level; logs are JSON lines on stdout.',
    'http.host': 'Address the REST API listens on (the container image sets `0.0.0.0`).',
    'http.port': 'REST API, `/healthz`, `/readyz`, `/metrics` and OpenAPI at `/docs`; 0 picks a free port.',
    'mqtt.host': 'Address the embedded broker listens on (TCP and WebSocket; the container image sets `0.0.0.0`).',
    'mqtt.tcpPort': 'Embedded MQTT broker over TCP; 0 picks a free port.',
  },
  agent: {
    labels: 'Sent at enrollment. `FLOTILLA_LABELS` (`k=v,k=v`) is merged over the labels of the file.',
    heartbeatSec: 'Heartbeat period; the desired state `config.heartbeatSec` overrides it.',
    logLevel: 'pino level; logs are JSON lines on stdout.',
    'mqtt.keepaliveSec': 'MQTT keepalive.',
    'mqtt.connectTimeoutMs': 'CONNACK deadline per connection attempt.',
    'mqtt.backoff.initialMs': 'First reconnect (and enrollment retry) delay; it grows by `multiplier` up to `maxMs`, with equal jitter.',
    'mqtt.backoff.maxMs': 'Cap of the reconnect and enrollment retry delay.',
    'mqtt.backoff.multiplier': 'Growth factor of the reconnect and enrollment retry delay.',
    'outbox.maxEntries': 'Most events stored; past it the lowest-priority, oldest events are dropped, counted and reported (docs/agent.md).',
    'outbox.maxBytes': 'Most encoded bytes stored in the outbox.',
    'inventory.commandTimeoutMs': 'Limit for `nvidia-smi` and `dpkg-query` while collecting the inventory.',
    'ota.health.windowMs': 'Health window after a switch: passes once this has elapsed with at least `minRequests` served.',
    'ota.health.minRequests': 'Requests needed before the error rate is judged.',
    'ota.health.maxErrorRate': 'Error rate above which the new version fails its health window and is rolled back.',
    'ota.health.maxWaitMs': 'A quiet device passes the health window after this long with no evidence of harm.',
    'ota.health.pollMs': 'How often the health counters are read during the window.',
    'ota.download.stallMs': 'An attempt that receives no byte for this long is cut; the next attempt resumes with a Range request.',
    'ota.download.maxAttempts': 'Attempts in a row that bring no new byte before the download fails.',
    'ota.download.backoffMs': 'First delay between download attempts.',
    'ota.download.maxBackoffMs': 'Cap of the delay between download attempts.',
    'ota.download.progressIntervalMs': 'At most one `ota.downloading` progress event per this interval.',
    'ota.download.transport': 'How artifact bodies are fetched: `direct` reads the socket into one reused buffer and hands undici any response it does not speak; `undici` only uses undici (docs/ota.md).',
    'ota.reserveBytes': 'Free disk kept beyond the new file (preflight).',
    'ota.retryMs': 'Delay before retrying an install that failed for a passing reason (download, disk); doubles per retry up to 16×.',
    'localApi.enabled': 'Off: no local inference API.',
    'localApi.host': 'Listen address; `127.0.0.1` keeps the API on the device.',
  },
  pool: {
    host: 'Listen address.',
    bodyLimitBytes: 'Larger request bodies get 413 `FLT_KSERVE_TOO_LARGE`.',
    'idempotency.maxEntries': 'Most answers kept for replay; the oldest are dropped first.',
    logLevel: 'pino level; logs are JSON lines on stdout.',
  },
};

interface Component {
  /** Marker name: `<!-- config-reference:<name>:begin -->`; the server's markers carry no name. */
  name: 'server' | 'agent' | 'pool';
  schema: Schema;
  schemaFile: string;
  rootConst: string;
  loaderFile: string;
  /** How the loader is told where the JSON file is. */
  fileSources: string[];
  /** env variable → the dotted key it sets. */
  envMap: () => Map<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Descriptions: the doc comment above each key, read from the schema source with the TS parser.

interface DocNode {
  doc?: string;
  children: Map<string, DocNode>;
}

function docCommentBefore(text: string, node: ts.Node): string | undefined {
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  const jsdoc = ranges.filter((r) => text.startsWith('/**', r.pos)).at(-1);
  if (!jsdoc) return undefined;
  return text
    .slice(jsdoc.pos + 3, jsdoc.end - 2)
    .split('\n')
    .map((line) => line.replace(/^\s*\*\s?/, '').trim())
    .filter((line) => line !== '')
    .join(' ');
}

function readDocTree(file: string, rootConst: string): DocNode {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const consts = new Map<string, { init: ts.Expression; statement: ts.Node }>();
  for (const st of source.statements) {
    if (!ts.isVariableStatement(st)) continue;
    for (const decl of st.declarationList.declarations) {
      if (ts.isIdentifier(decl.name) && decl.initializer) consts.set(decl.name.text, { init: decl.initializer, statement: st });
    }
  }

  // Every `Type.Object({ … })` literal an expression leads to: through wrappers (Optional, Union,
  // arrays of variants) and through consts of this file.
  const objectLiterals = (expr: ts.Node, seen: Set<string>): ts.ObjectLiteralExpression[] => {
    if (ts.isIdentifier(expr)) {
      const c = consts.get(expr.text);
      if (!c || seen.has(expr.text)) return [];
      return objectLiterals(c.init, new Set([...seen, expr.text]));
    }
    if (ts.isCallExpression(expr)) {
      const callee = expr.expression.getText(source);
      const first = expr.arguments[0];
      if (callee === 'Type.Object' && first && ts.isObjectLiteralExpression(first)) return [first];
      return expr.arguments.flatMap((a) => objectLiterals(a, seen));
    }
    if (ts.isArrayLiteralExpression(expr)) return expr.elements.flatMap((e) => objectLiterals(e, seen));
    if (ts.isParenthesizedExpression(expr) || ts.isAsExpression(expr)) return objectLiterals(expr.expression, seen);
    return [];
  };

  const build = (literals: ts.ObjectLiteralExpression[], seen: Set<string>): DocNode => {
    const node: DocNode = { children: new Map() };
    for (const literal of literals) {
      for (const prop of literal.properties) {
        if (!ts.isPropertyAssignment(prop)) continue;
        const name = ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name) ? prop.name.text : undefined;
        if (name === undefined || node.children.has(name)) continue;
        let doc = docCommentBefore(text, prop);
        // `batching: BatchingSchema`: the const's own comment describes the key.
        if (doc === undefined && ts.isIdentifier(prop.initializer)) {
          const c = consts.get(prop.initializer.text);
          if (c) doc = docCommentBefore(text, c.statement);
        }
        const child = build(objectLiterals(prop.initializer, seen), seen);
        if (doc !== undefined) child.doc = doc;
        node.children.set(name, child);
      }
    }
    return node;
  };

  const rootDecl = consts.get(rootConst);
  if (!rootDecl) throw new Error(`${file}: no const ${rootConst}`);
  return build(objectLiterals(rootDecl.init, new Set([rootConst])), new Set([rootConst]));
}

// ---------------------------------------------------------------------------------------------
// Environment variables: run the component's own mapping and see which key a probe value lands on.

function leafPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [prefix];
  return entries.flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** `labels` from `FLOTILLA_LABELS=1` lands on `labels.1`: keep the key the schema declares. */
function schemaKeyFor(schema: Schema, path: string): string {
  const parts = path.split('.');
  const kept: string[] = [];
  let node: Schema | undefined = schema;
  for (const part of parts) {
    const props: Record<string, Schema> | undefined = node?.properties ?? objectVariants(node).find((v) => v.properties?.[part])?.properties;
    if (!props?.[part]) break;
    kept.push(part);
    node = props[part];
  }
  if (kept.length === 0) throw new Error(`environment mapping sets ${path}, which the schema does not declare`);
  return kept.join('.');
}

function probeSetters(setters: Readonly<Record<string, (target: Record<string, unknown>, raw: string) => void>>, schema: Schema): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, set] of Object.entries(setters)) {
    const target: Record<string, unknown> = {};
    set(target, '1');
    const paths = leafPaths(target);
    if (paths.length !== 1 || paths[0] === '') throw new Error(`${name} sets ${paths.length} keys; expected one`);
    out.set(name, schemaKeyFor(schema, paths[0]!));
  }
  return out;
}

function serverEnvMap(loaderFile: string): Map<string, string> {
  const names = [...new Set(readFileSync(loaderFile, 'utf8').match(/FLOTILLA_[A-Z0-9_]+/g) ?? [])].filter((n) => n !== 'FLOTILLA_CONFIG');
  const out = new Map<string, string>();
  for (const name of names) {
    const paths = leafPaths(configFromEnv({ [name]: '1' }));
    if (paths.length !== 1 || paths[0] === '') throw new Error(`${name} is read by ${loaderFile} but sets ${paths.length} config keys for the value "1"`);
    out.set(name, schemaKeyFor(ServerConfigSchema as unknown as Schema, paths[0]!));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering.

function objectVariants(schema: Schema | undefined): Schema[] {
  return (schema?.anyOf ?? []).filter((s) => s.type === 'object' && s.properties);
}

function code(value: string): string {
  // A backtick inside a code span would end it; a pipe would end the table cell.
  return '`' + value.replace(/`/g, 'ˋ').replace(/\|/g, '\\|') + '`';
}

function humanBytes(n: number): string | null {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && value % 1024 === 0 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit >= 0 ? `${value} ${units[unit]}` : null;
}

function range(schema: Schema, key: string): string {
  const min = schema.minimum as number | undefined;
  const max = schema.maximum as number | undefined;
  if (min === undefined && max === undefined) return '';
  const fmt = (n: number) => (/bytes$/i.test(key) ? (humanBytes(n) ?? String(n)) : String(n));
  if (min !== undefined && max !== undefined) return ` ${fmt(min)}–${fmt(max)}`;
  return min !== undefined ? ` ≥ ${fmt(min)}` : ` ≤ ${fmt(max!)}`;
}

function typeOf(schema: Schema, key: string): string {
  if (schema.const !== undefined) return code(String(schema.const));
  if (schema.anyOf) {
    const variants = schema.anyOf;
    if (variants.every((v) => v.const !== undefined)) return `one of ${variants.map((v) => code(String(v.const))).join(', ')}`;
    const objects = objectVariants(schema);
    if (objects.length === variants.length) {
      const tag = Object.keys(objects[0]!.properties!).find((p) => objects.every((o) => o.properties![p]?.const !== undefined));
      if (tag) return `object, by ${code(tag)}: ${objects.map((o) => code(String(o.properties![tag]!.const))).join(', ')}`;
    }
    return variants.map((v) => typeOf(v, key)).join(' or ');
  }
  const minLength = (schema.minLength as number | undefined) ?? 0;
  const maxLength = schema.maxLength as number | undefined;
  const lengths =
    maxLength !== undefined
      ? minLength > 1
        ? `, ${minLength}–${maxLength} chars`
        : `, ≤ ${maxLength} chars${minLength === 1 ? ', not empty' : ''}`
      : minLength === 1
        ? ', not empty'
        : minLength > 1
          ? `, ≥ ${minLength} chars`
          : '';
  switch (schema.type) {
    case 'integer':
    case 'number':
      return `${schema.type}${range(schema, key)}`;
    case 'string':
      return `string${schema.pattern ? ` ${code(String(schema.pattern))}` : ''}${lengths}`;
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const bounds = schema.maxItems !== undefined ? `, at most ${String(schema.maxItems)}` : '';
      const unique = schema.uniqueItems ? ', no repeats' : '';
      return `list of ${schema.items ? typeOf(schema.items, key) : 'anything'}${bounds}${unique}`;
    }
    case 'object': {
      const values = schema.patternProperties ? Object.values(schema.patternProperties)[0] : (schema.additionalProperties as Schema | undefined);
      return values && typeof values === 'object' ? `map of string → ${typeOf(values, key)}` : 'object';
    }
    default:
      return 'any';
  }
}

function defaultOf(schema: Schema, key: string, required: boolean): string {
  if (schema.default === undefined) return required ? '(required)' : '(unset)';
  const d = schema.default;
  if (typeof d === 'number' && /bytes$/i.test(key)) {
    const h = humanBytes(d);
    return h ? `${code(String(d))} (${h})` : code(String(d));
  }
  return code(typeof d === 'string' ? d : JSON.stringify(d));
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

interface Row {
  key: string;
  env: string[];
  type: string;
  def: string;
  doc: string;
}

function rows(schema: Schema, docs: DocNode, envByKey: Map<string, string[]>, notes: Record<string, string>, prefix = '', condition = ''): Row[] {
  const out: Row[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const key = prefix ? `${prefix}.${name}` : name;
    const doc: DocNode = docs.children.get(name) ?? { children: new Map() };
    const nested = prop.type === 'object' && prop.properties;
    const variants = objectVariants(prop);
    const text = [condition, doc.doc ?? notes[key] ?? ''].filter((s) => s !== '').join(' ');
    if (nested) {
      // A section: its keys get their own rows; the section gets one only when it says something.
      if (doc.doc !== undefined || envByKey.has(key)) out.push({ key, env: envByKey.get(key) ?? [], type: 'object', def: '', doc: text });
      out.push(...rows(prop, doc, envByKey, notes, key, condition));
      continue;
    }
    out.push({ key, env: envByKey.get(key) ?? [], type: typeOf(prop, key), def: defaultOf(prop, key, required.has(name)), doc: text });
    if (variants.length > 0 && variants.length === (prop.anyOf ?? []).length) {
      const tag = Object.keys(variants[0]!.properties!).find((p) => variants.every((v) => v.properties![p]?.const !== undefined));
      // The tag itself gets a row when the environment can set it.
      if (tag && envByKey.has(`${key}.${tag}`)) {
        const values = variants.map((v) => code(String(v.properties![tag]!.const)));
        out.push({ key: `${key}.${tag}`, env: envByKey.get(`${key}.${tag}`)!, type: `one of ${values.join(', ')}`, def: '', doc: `Selects the form of ${code(key)}.` });
      }
      for (const variant of variants) {
        const when = tag ? `Only with ${code(`${key}.${tag}`)} = ${code(String(variant.properties![tag]!.const))}.` : '';
        const others = { ...variant, properties: Object.fromEntries(Object.entries(variant.properties!).filter(([p]) => p !== tag)) };
        out.push(...rows(others, doc, envByKey, notes, key, when));
      }
    }
  }
  return out;
}

function renderComponent(c: Component): string {
  const docs = readDocTree(c.schemaFile, c.rootConst);
  const envByKey = new Map<string, string[]>();
  for (const [env, key] of c.envMap()) envByKey.set(key, [...(envByKey.get(key) ?? []), env]);
  const all = rows(c.schema, docs, envByKey, NOTES[c.name]);
  const covered = new Set(all.map((r) => r.key));
  for (const key of envByKey.keys()) if (!covered.has(key)) throw new Error(`${c.name}: environment variable for ${key}, which has no row`);
  const lines = [
    `Generated from \`${relative(c.schemaFile)}\` and \`${relative(c.loaderFile)}\` by \`scripts/gen-config-reference.ts\`; do not edit by hand.`,
    `File: ${c.fileSources.join(', ')}. Environment variables override the file.`,
    '',
    '| key | environment | type | default | description |',
    '| --- | --- | --- | --- | --- |',
    ...all.map((r) => `| ${code(r.key)} | ${r.env.map(code).join(', ')} | ${r.type} | ${r.def} | ${cell(r.doc)} |`),
  ];
  return lines.join('\n');
}

function relative(file: string): string {
  return file.slice(fileURLToPath(root).length);
}

function sourceFile(path: string): string {
  return fileURLToPath(new URL(path, root));
}

function requireMention(file: string, names: string[]): string[] {
  const text = readFileSync(file, 'utf8');
  for (const n of names) if (!text.includes(n)) throw new Error(`${file} no longer mentions ${n}`);
  return names;
}

const COMPONENTS: Component[] = [
  {
    name: 'server',
    schema: ServerConfigSchema as unknown as Schema,
    schemaFile: sourceFile('server/src/config/schema.ts'),
    rootConst: 'ServerConfigSchema',
    loaderFile: sourceFile('server/src/config/load.ts'),
    fileSources: requireMention(sourceFile('server/src/config/load.ts'), ['FLOTILLA_CONFIG']).map((n) => `\`${n}\` (a JSON file)`),
    envMap: () => serverEnvMap(sourceFile('server/src/config/load.ts')),
  },
  {
    name: 'agent',
    schema: AgentConfigSchema as unknown as Schema,
    schemaFile: sourceFile('agent/src/config/schema.ts'),
    rootConst: 'AgentConfigSchema',
    loaderFile: sourceFile('agent/src/config/env.ts'),
    fileSources: ['`--config <path>`', ...requireMention(sourceFile('agent/src/config/load.ts'), ['FLOTILLA_AGENT_CONFIG']).map((n) => `\`${n}\``)].map((s, i) => (i === 0 ? s : `else ${s}`)),
    envMap: () => probeSetters(AGENT_ENV_VARS, AgentConfigSchema as unknown as Schema),
  },
  {
    name: 'pool',
    schema: PoolConfigSchema as unknown as Schema,
    schemaFile: sourceFile('packages/pool/src/config/schema.ts'),
    rootConst: 'PoolConfigSchema',
    loaderFile: sourceFile('packages/pool/src/config/env.ts'),
    fileSources: ['`--config <path>`', ...requireMention(sourceFile('packages/pool/src/config/load.ts'), ['FLOTILLA_POOL_CONFIG']).map((n) => `\`${n}\``)].map((s, i) => (i === 0 ? s : `else ${s}`)),
    envMap: () => probeSetters(POOL_ENV_VARS, PoolConfigSchema as unknown as Schema),
  },
];

function markers(name: Component['name']): [string, string] {
  const tag = name === 'server' ? 'config-reference' : `config-reference:${name}`;
  return [`<!-- ${tag}:begin -->`, `<!-- ${tag}:end -->`];
}

/** The doc with every marked section replaced by the reference generated now. */
export function renderConfigReference(doc: string): string {
  let out = doc;
  for (const c of COMPONENTS) {
    const [begin, end] = markers(c.name);
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`docs/operations.md lacks the markers ${begin} … ${end}`);
    out = `${out.slice(0, from + begin.length)}\n${renderComponent(c)}\n${out.slice(to)}`;
  }
  return out;
}

function main(argv: readonly string[]): number {
  const current = readFileSync(OPERATIONS_DOC, 'utf8');
  const next = renderConfigReference(current);
  if (argv.includes('--check')) {
    if (next === current) return 0;
    process.stderr.write('docs/operations.md is stale: run `pnpm exec tsx scripts/gen-config-reference.ts`\n');
    return 1;
  }
  if (next !== current) writeFileSync(OPERATIONS_DOC, next);
  process.stdout.write(`${next === current ? 'unchanged' : 'updated'}: docs/operations.md\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
