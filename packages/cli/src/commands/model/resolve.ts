import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ExecutionProvider } from '@flotilla/protocol';
import type { ReleaseVariant, VariantExplanation } from '@flotilla/release';
import type { CliIo } from '../../cli-io.ts';
import { CliError, usageError } from '../../cli-errors.ts';
import { apiPath } from '../../http-client.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { table } from '../../output.ts';
import { formatConstraints } from './render-version.ts';

interface ResolveAnswer {
  model: string;
  version: string;
  device: string | null;
  variant: ReleaseVariant;
  provider: ExecutionProvider;
  explanation: VariantExplanation;
}

export function registerResolve(model: Command, io: CliIo): void {
  model
    .command('resolve')
    .description('which variant a device would get, and why (from its reported inventory, or a what-if inventory file)')
    .argument('<name>', 'model name')
    .argument('<version>', 'model version')
    .option('--device <id>', 'a device that has reported its inventory')
    .option('--inventory <path>', 'what-if: a JSON hardware inventory (arch, gpu, tensorrtVersion, jetpackVersion, executionProviders)')
    .action((name: string, version: string, opts: { device?: string; inventory?: string }, cmd: Command) =>
      withInvocation(io, cmd, (inv) => resolve(inv, name, version, opts)),
    );
}

async function readInventory(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw usageError(`cannot read inventory file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function explanationLines(e: VariantExplanation): string[] {
  return [
    `why: ${e.why}`,
    ...table(
      ['CANDIDATE', 'VERDICT', 'RANK', 'DETAIL'],
      e.candidates.map((c) => {
        const rank = e.ranking.indexOf(c.id);
        const detail = c.accepted ? `${c.preferenceLabel ?? ''}${c.provider ? ` (provider ${c.provider})` : ''}` : c.reasons.join('; ');
        return [c.id, c.accepted ? 'accepted' : 'rejected', rank < 0 ? '-' : String(rank + 1), detail];
      }),
    ),
  ];
}

async function resolve(inv: Invocation, name: string, version: string, opts: { device?: string; inventory?: string }): Promise<void> {
  if ((opts.device === undefined) === (opts.inventory === undefined)) throw usageError('give exactly one of --device <id> or --inventory <file>');
  const path = apiPath`/v1/models/${name}/versions/${version}/resolve`;
  let answer: ResolveAnswer;
  try {
    answer = opts.device !== undefined
      ? await inv.client.get<ResolveAnswer>(path, { device: opts.device })
      : await inv.client.send<ResolveAnswer>('POST', path, { inventory: await readInventory(inv.path(opts.inventory!)) });
  } catch (err) {
    // No variant fits: the refusal carries the explanation, which is the useful part for people.
    const explanation = err instanceof CliError && err.code === 'FLT_OTA_INCOMPATIBLE' ? (err.details as { explanation?: VariantExplanation } | undefined)?.explanation : undefined;
    if (explanation && !inv.out.json) inv.out.result(null, () => explanationLines(explanation));
    throw err;
  }
  inv.out.result(answer, () => [
    `${answer.model} ${answer.version}${answer.device ? ` for device ${answer.device}` : ''}: ${answer.variant.id} (${answer.variant.format} ${answer.variant.precision}) on ${answer.provider}`,
    `file: ${answer.variant.file.name}, ${answer.variant.file.length} bytes, sha256 ${answer.variant.file.sha256}`,
    `constraints: ${formatConstraints(answer.variant.constraints)}`,
    ...explanationLines(answer.explanation),
  ]);
}
