import { FlotillaError, type AddKeyRequest } from '@flotilla/protocol';
import { TrustedKeys, applyRotation, createRotation, exportPublicKey, importPublicKey, type KeyRotation, type TrustedKeyEntry } from '@flotilla/release';
import type { Db } from '../db/open.ts';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { ServerSigningKey } from './signing-key.ts';

export interface KeyTrustDeps {
  db: Db;
  audit: AuditLog;
  now: () => number;
  serverKey: ServerSigningKey;
}

/**
 * The set of keys the fleet trusts to sign releases, and the ordered log of rotations that made it.
 * Every change after the first start is a rotation statement signed by a key trusted at that
 * moment, so a device holding an older copy of the set can replay the log and verify each step.
 */
export class KeyTrust {
  readonly #d: KeyTrustDeps;
  #cache: TrustedKeys | null = null;

  private constructor(deps: KeyTrustDeps) {
    this.#d = deps;
  }

  /** Opens the trusted set; on first start the server's own key is the only trusted key. */
  static open(deps: KeyTrustDeps): KeyTrust {
    const row = deps.db.prepare('SELECT 1 FROM trusted_keys WHERE id = 1').get();
    if (!row) {
      const doc = TrustedKeys.of(deps.serverKey.publicKey).entries().map((e) => ({ ...e, label: 'server' }));
      deps.db.prepare('INSERT INTO trusted_keys (id, document, updated_at) VALUES (1, ?, ?)').run(JSON.stringify(doc), deps.now());
    }
    return new KeyTrust(deps);
  }

  current(): TrustedKeys {
    if (!this.#cache) {
      const row = this.#d.db.prepare('SELECT document FROM trusted_keys WHERE id = 1').get() as { document: string };
      this.#cache = TrustedKeys.from(JSON.parse(row.document));
    }
    return this.#cache;
  }

  /** The server key id when the current set lets it sign now; otherwise null. */
  usableServerKeyId(): string | null {
    const id = this.#d.serverKey.keyId;
    return this.current().status(id, this.#d.now()) === 'trusted' ? id : null;
  }

  view(): { keys: TrustedKeyEntry[]; serverKeyId: string | null; rotations: number } {
    const n = (this.#d.db.prepare('SELECT COUNT(*) AS n FROM key_rotations').get() as { n: number }).n;
    return { keys: this.current().entries(), serverKeyId: this.usableServerKeyId(), rotations: n };
  }

  rotations(after = 0): Array<{ seq: number; appliedAt: number; rotation: KeyRotation }> {
    const rows = this.#d.db
      .prepare('SELECT seq, applied_at AS appliedAt, statement FROM key_rotations WHERE seq > ? ORDER BY seq LIMIT 1000')
      .all(after) as Array<{ seq: number; appliedAt: number; statement: string }>;
    return rows.map((r) => ({ seq: r.seq, appliedAt: r.appliedAt, rotation: JSON.parse(r.statement) as KeyRotation }));
  }

  /**
   * Applies a rotation signed by currently trusted key(s) (verified by `applyRotation`), stores the
   * new set and appends the statement to the log, with its audit entry, in one transaction.
   */
  applyRotation(actor: AuditActor, rotation: unknown): TrustedKeys {
    const next = this.#d.db.transaction(() => {
      const next = applyRotation(this.current(), rotation, { now: this.#d.now() });
      const statement = rotation as KeyRotation;
      this.#store(next, statement);
      this.#d.audit.record(actor, 'keys.rotate', null, {
        add: statement.signed.add.map((k) => k.keyId),
        retire: statement.signed.retire,
        signedBy: statement.signatures.map((s) => s.keyId),
      });
      return next;
    })();
    this.#cache = next;
    return next;
  }

  /**
   * Trusts an offline public key. Adding trust always goes through a signed rotation statement:
   * here the server's online key signs it, which it may do only while that key is trusted itself.
   * A fleet that has retired the online key adds keys with an offline-signed rotation instead.
   */
  addKey(actor: AuditActor, req: AddKeyRequest): TrustedKeys {
    if (this.usableServerKeyId() === null) {
      throw new FlotillaError('FLT_REGISTRY_SERVER_KEY_UNTRUSTED', 'the server key cannot vouch for a new key; POST a rotation signed by a trusted key to /v1/keys/rotations');
    }
    let publicKey;
    try {
      publicKey = importPublicKey(req.publicKey);
    } catch (err) {
      throw new FlotillaError('FLT_BAD_REQUEST', `publicKey: ${(err as Error).message}`);
    }
    const rotation = createRotation(
      {
        issuedAt: this.#d.now(),
        add: [{ publicKey: exportPublicKey(publicKey), ...(req.label !== undefined ? { label: req.label } : {}), ...(req.notBefore !== undefined ? { notBefore: req.notBefore } : {}), ...(req.notAfter !== undefined ? { notAfter: req.notAfter } : {}) }],
      },
      this.#d.serverKey.privateKey,
    );
    return this.applyRotation(actor, rotation);
  }

  #store(next: TrustedKeys, statement: KeyRotation): void {
    const now = this.#d.now();
    this.#d.db.prepare('UPDATE trusted_keys SET document = ?, updated_at = ? WHERE id = 1').run(JSON.stringify(next.entries()), now);
    this.#d.db.prepare('INSERT INTO key_rotations (statement, applied_at) VALUES (?, ?)').run(JSON.stringify(statement), now);
  }
}
