import type { Command } from 'commander';
import type { ModelView, VersionView } from '@flotilla/protocol';
import type { CliIo } from '../../cli-io.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { fields, when } from '../../output.ts';
import { renderVersion } from './render-version.ts';

export function registerShow(model: Command, io: CliIo): void {
  model
    .command('show')
    .description('show a model with all its versions, or one version: state, manifest summary, variants with sha256, size and constraints')
    .argument('<name>', 'model name')
    .argument('[version]', 'one version only')
    .action((name: string, version: string | undefined, _opts: unknown, cmd: Command) => withInvocation(io, cmd, (inv) => show(inv, name, version)));
}

async function show(inv: Invocation, name: string, version: string | undefined): Promise<void> {
  if (version !== undefined) {
    const v = await inv.client.get<VersionView>(apiPath`/v1/models/${name}/versions/${version}`);
    inv.out.result(v, () => renderVersion(v));
    return;
  }
  const m = await inv.client.get<ModelView>(apiPath`/v1/models/${name}`);
  const { items } = await inv.client.get<{ items: VersionView[] }>(apiPath`/v1/models/${name}/versions`);
  inv.out.result({ ...m, items }, () => {
    const lines = fields([
      ['model', m.name],
      ['description', m.description || '-'],
      ['tags', m.tags.length > 0 ? m.tags.join(', ') : '-'],
      ['latest published', m.latestPublished ?? '-'],
      ['created', when(m.createdAt)],
    ]);
    for (const v of items) lines.push('', ...renderVersion(v));
    if (items.length === 0) lines.push('', 'no versions yet');
    return lines;
  });
}
