import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import type { VersionState } from '@flotilla/protocol';
import { importPrivateKey, manifestDigest, parseManifest, signDetached, type ReleaseManifest, type SignedRelease } from '@flotilla/release';
import { checkFailed, usageError } from '../../cli-errors.ts';
import { apiPath, type ApiClient } from '../../http-client.ts';

/** The publish and signature answers (`PublishResponse`), with the parts release owns typed. */
export interface PublishAnswer {
  state: VersionState;
  digest: string;
  manifest: ReleaseManifest;
  release: SignedRelease | null;
}

/** What a push measured, so an offline signer signs only a manifest that lists exactly it. */
export interface PushedArtifact {
  variant: string;
  sha256: string;
  length: number;
}

/** Reads an ed25519 PKCS#8 PEM private key; any problem is a usage error (nothing sent yet). */
export async function readSigningKey(path: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`cannot read signing key ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return importPrivateKey(pem);
  } catch (err) {
    throw usageError(`${path} is not an ed25519 private key in PKCS#8 PEM (make one with \`flotilla keys generate\`): ${(err as Error).message}`);
  }
}

export function publishWithServerKey(client: ApiClient, model: string, version: string): Promise<PublishAnswer> {
  return client.send<PublishAnswer>('POST', apiPath`/v1/models/${model}/versions/${version}/publish`, { signing: 'server' });
}

/** Freezes the version into a manifest the server will not sign itself (state awaiting-signature). */
export function publishForOfflineSigning(client: ApiClient, model: string, version: string): Promise<PublishAnswer> {
  return client.send<PublishAnswer>('POST', apiPath`/v1/models/${model}/versions/${version}/publish`, { signing: 'offline' });
}

/**
 * Fetches the unsigned manifest, checks it describes this version (and the artifact just pushed,
 * when given) and that its digest is the one the server announced, signs it here with
 * `signDetached` and uploads only `{ keyId, sig }`: the private key never leaves this machine.
 */
export async function signOffline(
  client: ApiClient,
  model: string,
  version: string,
  key: KeyObject,
  pushed?: PushedArtifact,
): Promise<PublishAnswer> {
  const unsigned = await client.get<{ manifest: unknown; digest: string; state: VersionState }>(apiPath`/v1/models/${model}/versions/${version}/unsigned-manifest`);
  let manifest: ReleaseManifest;
  try {
    manifest = parseManifest(unsigned.manifest);
  } catch (err) {
    throw checkFailed('FLT_CLI_MANIFEST_MISMATCH', `the server handed out a manifest that does not validate: ${(err as Error).message}`);
  }
  if (manifest.model !== model || manifest.version !== version) {
    throw checkFailed('FLT_CLI_MANIFEST_MISMATCH', `asked to sign ${model}@${version} but the manifest is for ${manifest.model}@${manifest.version}`);
  }
  const digest = manifestDigest(manifest);
  if (digest !== unsigned.digest) {
    throw checkFailed('FLT_CLI_MANIFEST_MISMATCH', `the manifest's digest is ${digest}, the server announced ${unsigned.digest}`);
  }
  if (pushed) {
    const entry = manifest.variants.find((v) => v.id === pushed.variant);
    if (!entry || entry.file.sha256 !== pushed.sha256 || entry.file.length !== pushed.length) {
      throw checkFailed(
        'FLT_CLI_MANIFEST_MISMATCH',
        `the manifest does not list variant ${pushed.variant} as the ${pushed.length} bytes with sha256 ${pushed.sha256} that were pushed`,
        { expected: pushed, found: entry?.file ?? null },
      );
    }
  }
  const signature = signDetached(manifest, key);
  return client.send<PublishAnswer>('POST', apiPath`/v1/models/${model}/versions/${version}/signatures`, signature);
}

/** The summary a command prints (and puts in its JSON) after publishing. */
export function publishSummary(answer: PublishAnswer) {
  return {
    state: answer.state,
    digest: answer.digest,
    releaseCounter: answer.manifest.releaseCounter,
    expiresAt: answer.manifest.expiresAt,
    signedBy: answer.release?.signatures.map((s) => s.keyId) ?? [],
  };
}

export function publishLine(answer: PublishAnswer): string {
  const s = publishSummary(answer);
  const signers = s.signedBy.length > 0 ? `signed by ${s.signedBy.join(', ')}` : 'awaiting an offline signature';
  return `${s.state}: release ${s.releaseCounter}, manifest digest ${s.digest}, ${signers}`;
}
