import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { Option, type Command } from 'commander';
import type { VariantView, VersionView } from '@flotilla/protocol';
import { canonicalJson, type VariantConstraints } from '@flotilla/release';
import type { CliIo } from '../../cli-io.ts';
import { CliError, checkFailed, usageError } from '../../cli-errors.ts';
import { apiPath, type ApiClient } from '../../http-client.ts';
import { withInvocation, type Invocation } from '../../invocation.ts';
import { bytes, fields } from '../../output.ts';
import { DigestingStream } from '../../upload/digesting-stream.ts';
import { uploadProgress } from '../../upload/progress-bar.ts';
import { readMetadataFile } from './metadata-file.ts';
import { publishForOfflineSigning, publishLine, publishSummary, publishWithServerKey, readSigningKey, signOffline, type PublishAnswer } from './publishing.ts';
import { formatConstraints, variantSummary } from './render-version.ts';

export interface PushOptions {
  file: string;
  variant: string;
  format: 'onnx' | 'tensorrt-plan';
  precision: 'fp32' | 'fp16' | 'int8';
  arch?: string;
  provider?: VariantConstraints['executionProvider'];
  computeCapability?: string;
  minComputeCapability?: string;
  tensorrt?: string;
  jetpack?: string;
  fileName?: string;
  metadata?: string;
  publish?: boolean;
  offlineKey?: string;
}

export function registerPush(model: Command, io: CliIo): void {
  model
    .command('push')
    .description('upload one variant of a model version (creating the model and version when needed), optionally publish it')
    .argument('<name>', 'model name')
    .argument('<version>', 'model version')
    .requiredOption('--file <path>', 'the artifact to upload (streamed, hashed while sent)')
    .requiredOption('--variant <id>', 'variant id, e.g. cpu-int8')
    .addOption(new Option('--format <format>', 'artifact format').choices(['onnx', 'tensorrt-plan']).default('onnx'))
    .addOption(new Option('--precision <precision>', 'numeric precision').choices(['fp32', 'fp16', 'int8']).makeOptionMandatory())
    .option('--arch <list>', 'CPU architectures it runs on, comma separated (x64,arm64)')
    .addOption(new Option('--provider <provider>', 'execution provider it needs').choices(['tensorrt', 'cuda', 'cpu', 'triton']))
    .option('--compute-capability <cc>', 'exact GPU compute capability (required for tensorrt-plan), e.g. 8.7')
    .option('--min-compute-capability <cc>', 'lowest GPU compute capability it runs on')
    .option('--tensorrt <version>', 'TensorRT version the plan was built with')
    .option('--jetpack <version>', 'JetPack version it needs')
    .option('--file-name <name>', 'file name devices store it under (default <variant>.onnx or <variant>.plan)')
    .option('--metadata <path>', 'version metadata JSON or a model card (model.json); required when the version is new')
    .option('--publish', 'publish the version after the upload (signed by the server key unless --offline-key)')
    .option('--offline-key <path>', 'with --publish: sign the manifest here with this ed25519 PEM key instead of the server key')
    .action((name: string, version: string, opts: PushOptions, cmd: Command) => withInvocation(io, cmd, (inv) => push(inv, name, version, opts)));
}

function constraintsFrom(opts: PushOptions): VariantConstraints {
  const arch = opts.arch?.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const c: VariantConstraints = {};
  if (arch && arch.length > 0) c.arch = arch;
  if (opts.provider) c.executionProvider = opts.provider;
  if (opts.computeCapability) c.computeCapability = opts.computeCapability;
  if (opts.minComputeCapability) c.minComputeCapability = opts.minComputeCapability;
  if (opts.tensorrt) c.tensorrtVersion = opts.tensorrt;
  if (opts.jetpack) c.jetpackVersion = opts.jetpack;
  return c;
}

async function artifactSize(path: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw usageError(`--file ${path} is not a regular file`);
    if (s.size === 0) throw usageError(`--file ${path} is empty`);
    return s.size;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(code === 'ENOENT' ? `--file ${path} does not exist` : `cannot read --file ${path}: ${code ?? String(err)}`);
  }
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof CliError && codes.includes(err.code);
}

async function push(inv: Invocation, name: string, version: string, opts: PushOptions): Promise<void> {
  // Everything local is checked before the first request, so a typo never leaves half a push behind.
  if (opts.offlineKey && !opts.publish) throw usageError('--offline-key only makes sense with --publish');
  const file = inv.path(opts.file);
  const size = await artifactSize(file);
  const metadata = opts.metadata ? await readMetadataFile(inv.path(opts.metadata)) : undefined;
  const key = opts.offlineKey ? await readSigningKey(inv.path(opts.offlineKey)) : undefined;
  const constraints = constraintsFrom(opts);
  const client = inv.client;

  const { view, modelCreated, versionCreated } = await ensureVersion(client, name, version, metadata);
  const variant = await ensureVariant(client, view, { id: opts.variant, format: opts.format, precision: opts.precision, constraints, fileName: opts.fileName });

  const progress = uploadProgress({ enabled: inv.showProgress, stream: inv.io.stderr, total: size, label: `${opts.variant}` });
  const digester = new DigestingStream((n) => progress.update(n));
  // Only the file's own read errors are ours; a stream torn down because the server answered early is not.
  let readError: Error | undefined;
  const source = createReadStream(file).once('error', (err) => (readError = err));
  const body = pipeline(source, digester, () => {});
  let uploaded: { sha256: string; length: number; variant: VariantView };
  try {
    uploaded = await client.upload(apiPath`/v1/models/${name}/versions/${version}/variants/${variant.id}/artifact`, body, size);
  } catch (err) {
    if (readError) throw usageError(`reading ${file} failed during the upload: ${readError.message}`);
    throw err;
  } finally {
    progress.stop();
  }
  const local = { sha256: digester.sha256 ?? '', length: digester.length };
  if (local.length !== size) throw checkFailed('FLT_CLI_DIGEST_MISMATCH', `${file} changed while it was read: ${size} bytes at start, ${local.length} sent`);
  if (uploaded.sha256 !== local.sha256 || uploaded.length !== local.length) {
    throw checkFailed('FLT_CLI_DIGEST_MISMATCH', `the server measured ${uploaded.length} bytes with sha256 ${uploaded.sha256}; this CLI sent ${local.length} bytes with sha256 ${local.sha256}`, {
      local,
      server: { sha256: uploaded.sha256, length: uploaded.length },
    });
  }

  let published: PublishAnswer | undefined;
  if (opts.publish) {
    if (key) {
      await publishForOfflineSigning(client, name, version);
      published = await signOffline(client, name, version, key, { variant: variant.id, ...local });
    } else {
      published = await publishWithServerKey(client, name, version);
    }
  }

  inv.out.result(
    {
      model: name,
      version,
      modelCreated,
      versionCreated,
      variant: uploaded.variant,
      sha256: local.sha256,
      length: local.length,
      serverAgrees: true,
      publish: published ? publishSummary(published) : null,
    },
    () =>
      fields([
        ['model', `${name}${modelCreated ? ' (created)' : ''}`],
        ['version', `${version}${versionCreated ? ' (created)' : ''}`],
        ['variant', variantSummary(uploaded.variant)],
        ['uploaded', bytes(local.length)],
        ['sha256', `${local.sha256} (computed here; the server measured the same)`],
        ['state', published ? publishLine(published) : `${view.state} (publish with --publish or \`flotilla model publish\`)`],
      ]),
  );
}

/** Finds the version or creates it (and its model); metadata given for an existing draft replaces its metadata. */
async function ensureVersion(client: ApiClient, name: string, version: string, metadata: Record<string, unknown> | undefined) {
  const versionPath = apiPath`/v1/models/${name}/versions/${version}`;
  let modelExists = true;
  try {
    const view = await client.get<VersionView>(versionPath);
    if (metadata && view.state === 'draft') {
      return { view: await client.send<VersionView>('PATCH', versionPath, { metadata }), modelCreated: false, versionCreated: false };
    }
    return { view, modelCreated: false, versionCreated: false };
  } catch (err) {
    if (isCode(err, 'FLT_REGISTRY_MODEL_NOT_FOUND')) modelExists = false;
    else if (!isCode(err, 'FLT_REGISTRY_VERSION_NOT_FOUND')) throw err;
  }
  if (!metadata) {
    throw usageError(`${name}@${version} does not exist yet: pass --metadata <file> (version metadata or a model card) to create it`);
  }
  let modelCreated = false;
  if (!modelExists) {
    try {
      const description = typeof metadata.description === 'string' ? metadata.description : undefined;
      await client.send('POST', '/v1/models', { name, ...(description ? { description } : {}) });
      modelCreated = true;
    } catch (err) {
      // Someone created it between our look-up and now: that is what we wanted.
      if (!isCode(err, 'FLT_REGISTRY_EXISTS')) throw err;
    }
  }
  const view = await client.send<VersionView>('POST', apiPath`/v1/models/${name}/versions`, { version, metadata });
  return { view, modelCreated, versionCreated: true };
}

interface VariantSpec {
  id: string;
  format: PushOptions['format'];
  precision: PushOptions['precision'];
  constraints: VariantConstraints;
  fileName: string | undefined;
}

/** Registers the variant, or reuses it when one with this id and exactly these settings exists. */
async function ensureVariant(client: ApiClient, view: VersionView, spec: VariantSpec): Promise<VariantView> {
  const existing = view.variants.find((v) => v.id === spec.id);
  if (existing) {
    const same =
      existing.format === spec.format &&
      existing.precision === spec.precision &&
      canonicalJson(existing.constraints ?? {}) === canonicalJson(spec.constraints) &&
      (spec.fileName === undefined || existing.fileName === spec.fileName);
    if (!same) {
      throw new CliError(
        'FLT_REGISTRY_EXISTS',
        `variant ${spec.id} of ${view.model}@${view.version} already exists as ${existing.format} ${existing.precision} (${formatConstraints(existing.constraints)}); pick another variant id`,
      );
    }
    return existing;
  }
  return client.send<VariantView>('POST', apiPath`/v1/models/${view.model}/versions/${view.version}/variants`, {
    id: spec.id,
    format: spec.format,
    precision: spec.precision,
    constraints: spec.constraints,
    ...(spec.fileName !== undefined ? { fileName: spec.fileName } : {}),
  });
}
