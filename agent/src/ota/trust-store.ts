import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyRotation, TrustedKeys } from '@flotilla/release';
import { FlotillaError } from '@flotilla/protocol';
import { writeFileAtomic } from '../storage/atomic-write.ts';

export const TRUST_FILE = 'trusted-keys.json';

interface TrustFile {
  keys: unknown;
  /** Sequence number of the last key rotation applied (the server's rotation log). */
  rotationSeq: number;
  pinnedAt: number;
}

/**
 * The release-signing keys this device trusts, pinned in `<dataDir>/trusted-keys.json`. Trust on
 * first use: the first set is taken from the server right after enrollment; from then on the set
 * only changes through rotation statements signed by keys already pinned, applied in log order.
 */
export class TrustStore {
  readonly path: string;
  #keys: TrustedKeys | undefined;
  #rotationSeq = 0;

  constructor(dataDir: string) {
    this.path = join(dataDir, TRUST_FILE);
    let raw: string | undefined;
    try {
      raw = readFileSync(this.path, 'utf8');
    } catch {
      return;
    }
    const doc = JSON.parse(raw) as TrustFile;
    this.#keys = TrustedKeys.from(doc.keys);
    this.#rotationSeq = doc.rotationSeq;
  }

  get pinned(): boolean {
    return this.#keys !== undefined;
  }

  get rotationSeq(): number {
    return this.#rotationSeq;
  }

  keys(): TrustedKeys {
    if (!this.#keys) throw new FlotillaError('FLT_OTA_UNTRUSTED', 'no release-signing keys are pinned yet');
    return this.#keys;
  }

  /** First pin (TOFU). Refuses to replace a set already pinned: later changes are rotations only. */
  pin(entries: unknown, rotationSeq: number, now: number): TrustedKeys {
    if (this.#keys) return this.#keys;
    const keys = TrustedKeys.from(entries);
    if (keys.usableKeyIds(now).length === 0) throw new FlotillaError('FLT_OTA_UNTRUSTED', 'the server offered no usable release-signing key');
    this.#save(keys, rotationSeq, now);
    return keys;
  }

  /**
   * Applies rotations in order (each verified against the set as it stands after the previous one)
   * and persists after each, so a crash mid-way resumes at the right sequence number.
   */
  applyRotations(items: ReadonlyArray<{ seq: number; rotation: unknown }>, now: number): number {
    let applied = 0;
    for (const item of [...items].sort((a, b) => a.seq - b.seq)) {
      if (item.seq <= this.#rotationSeq) continue;
      const next = applyRotation(this.keys(), item.rotation, { now });
      this.#save(next, item.seq, now);
      applied++;
    }
    return applied;
  }

  #save(keys: TrustedKeys, rotationSeq: number, now: number): void {
    const doc: TrustFile = { keys: keys.entries(), rotationSeq, pinnedAt: now };
    writeFileAtomic(this.path, JSON.stringify(doc, null, 2));
    this.#keys = keys;
    this.#rotationSeq = rotationSeq;
  }
}
