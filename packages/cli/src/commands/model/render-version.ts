import type { VariantView, VersionView } from '@flotilla/protocol';
import type { VariantConstraints } from '@flotilla/release';
import { fields, table, when } from '../../output.ts';

const CONSTRAINT_LABELS: Record<keyof VariantConstraints, string> = {
  arch: 'arch',
  executionProvider: 'provider',
  computeCapability: 'cc',
  minComputeCapability: 'min-cc',
  tensorrtVersion: 'tensorrt',
  jetpackVersion: 'jetpack',
};

/** `arch=x64,arm64 provider=cpu`, or `any` when a variant runs everywhere. */
export function formatConstraints(raw: unknown): string {
  const c = (raw ?? {}) as Partial<Record<keyof VariantConstraints, unknown>>;
  const parts = (Object.keys(CONSTRAINT_LABELS) as Array<keyof VariantConstraints>)
    .filter((k) => c[k] !== undefined)
    .map((k) => `${CONSTRAINT_LABELS[k]}=${Array.isArray(c[k]) ? (c[k] as unknown[]).join(',') : String(c[k])}`);
  return parts.length === 0 ? 'any' : parts.join(' ');
}

export function variantRows(variants: readonly VariantView[]): string[] {
  return table(
    ['VARIANT', 'FORMAT', 'PRECISION', 'BYTES', 'SHA256', 'CONSTRAINTS'],
    variants.map((v) => [v.id, v.format, v.precision, v.length === null ? '-' : String(v.length), v.sha256 ?? '(not uploaded)', formatConstraints(v.constraints)]),
  );
}

function manifestLine(m: NonNullable<VersionView['manifest']>): string {
  const signers = m.signedBy.length === 0 ? 'awaiting an offline signature' : `signed by ${m.signedBy.join(', ')}`;
  return `release ${m.releaseCounter}, digest ${m.digest}, ${signers}, expires ${when(m.expiresAt)}`;
}

function tensors(list: VersionView['metadata']['inputs']): string {
  return list.map((t) => `${t.name} ${t.dtype} [${t.shape.join(',')}]`).join('; ');
}

/** A version for people: state, manifest summary, metadata highlights and every variant. */
export function renderVersion(v: VersionView): string[] {
  const md = v.metadata;
  const entries: Array<[string, string]> = [
    ['version', `${v.model} ${v.version}`],
    ['state', v.state],
    ['created', when(v.createdAt)],
    ['published', when(v.publishedAt)],
    ['manifest', v.manifest ? manifestLine(v.manifest) : '-'],
    ['inputs', tensors(md.inputs)],
    ['outputs', tensors(md.outputs)],
  ];
  if (md.description) entries.push(['description', md.description]);
  if (md.labels) entries.push(['labels', `${md.labels.length} classes`]);
  if (md.metrics && Object.keys(md.metrics).length > 0) {
    entries.push(['metrics', Object.entries(md.metrics).map(([k, n]) => `${k}=${Number(n.toPrecision(4))}`).join(' ')]);
  }
  entries.push(['golden', md.golden ? `yes (tolerance ${md.golden.tolerance})` : 'no']);
  if (md.tags && md.tags.length > 0) entries.push(['tags', md.tags.join(', ')]);
  const lines = fields(entries);
  lines.push('variants:');
  lines.push(...(v.variants.length === 0 ? ['  (none)'] : variantRows(v.variants).map((l) => `  ${l}`)));
  return lines;
}

export function variantSummary(v: VariantView): string {
  return `${v.id} (${v.format} ${v.precision}, ${formatConstraints(v.constraints)})`;
}
