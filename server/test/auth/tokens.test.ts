/**
 * API and enrollment tokens from the attacker's side: a token only admits while it is registered,
 * unrevoked and unexpired, and only the exact secret admits. Real SQLite, in memory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiTokens } from '../../src/auth/api-tokens.ts';
import { EnrollmentTokens } from '../../src/auth/enrollment-tokens.ts';
import { hashSecret, newSecret, sameHash } from '../../src/auth/secrets.ts';
import { openDatabase, type Db } from '../../src/db/open.ts';

const open: Db[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function store(start = 1_000) {
  const db = openDatabase(':memory:');
  open.push(db);
  const clock = { now: start };
  return { api: new ApiTokens(db, () => clock.now), enroll: new EnrollmentTokens(db, () => clock.now), clock };
}

describe('API tokens', () => {
  it('admit the exact token with its name and role, and nothing close to it', () => {
    const { api } = store();
    const { id, token } = api.create('ci', 'operator', 'bootstrap');
    expect(token).toMatch(/^flta_[A-Za-z0-9_-]{43}$/);
    expect(api.authenticate(token)).toEqual({ tokenId: id, name: 'ci', role: 'operator' });
    expect(api.authenticate(token.slice(0, -1))).toBeNull();
    expect(api.authenticate(`${token}x`)).toBeNull();
    expect(api.authenticate(hashSecret(token))).toBeNull();
    expect(api.authenticate('')).toBeNull();
  });

  it('stop admitting a revoked token at once, and remember it was known', () => {
    const { api, clock } = store();
    const { id, token } = api.create('ci', 'admin', 'bootstrap');
    clock.now = 2_000;
    expect(api.revoke(id)).toBe(true);
    expect(api.authenticate(token)).toBeNull();
    expect(api.hasToken(token)).toBe(false);
    expect(api.isKnown(token)).toBe(true);
    expect(api.isKnown('flta_never-issued')).toBe(false);
    expect(api.list()).toMatchObject([{ id, name: 'ci', role: 'admin', created_at: 1_000, created_by: 'bootstrap', revoked_at: 2_000 }]);
  });

  it('revoke a token only once and report an unknown id as not revoked', () => {
    const { api } = store();
    const { id } = api.create('ci', 'viewer', 'bootstrap');
    expect(api.revoke(id)).toBe(true);
    expect(api.revoke(id)).toBe(false);
    expect(api.revoke('00000000-0000-4000-8000-000000000000')).toBe(false);
  });

  it('count only unrevoked admin tokens as admins', () => {
    const { api } = store();
    const a = api.create('a', 'admin', 'x');
    api.create('b', 'admin', 'x');
    api.create('c', 'operator', 'x');
    expect(api.countActiveAdmins()).toBe(2);
    api.revoke(a.id);
    expect(api.countActiveAdmins()).toBe(1);
  });

  it('store only the hash of a token', () => {
    const { api } = store();
    const { token } = api.create('ci', 'admin', 'bootstrap', 'flta_chosen-plain-token');
    expect(token).toBe('flta_chosen-plain-token');
    expect(JSON.stringify(api.list())).not.toContain('chosen-plain-token');
    expect(api.hasToken('flta_chosen-plain-token')).toBe(true);
  });

  it('list tokens in creation order', () => {
    const { api, clock } = store();
    api.create('first', 'viewer', 'x');
    clock.now = 500;
    api.create('earlier', 'viewer', 'x');
    expect(api.list().map((t) => t.name)).toEqual(['earlier', 'first']);
  });
});

describe('enrollment tokens', () => {
  it('admit a token until the instant it expires, and not from then on', () => {
    const { enroll, clock } = store();
    const { token } = enroll.create('line-1', { expiresAt: 5_000 });
    expect(token).toMatch(/^flte_/);
    clock.now = 4_999;
    expect(enroll.isValid(token)).toBe(true);
    clock.now = 5_000;
    expect(enroll.isValid(token)).toBe(false);
  });

  it('admit a token without an expiry until it is revoked, and remember a revoked one', () => {
    const { enroll, clock } = store();
    const { id, token } = enroll.create('line-1');
    clock.now = Number.MAX_SAFE_INTEGER;
    expect(enroll.isValid(token)).toBe(true);
    expect(enroll.count()).toBe(1);
    expect(enroll.revoke(id)).toBe(true);
    expect(enroll.revoke(id)).toBe(false);
    expect(enroll.isValid(token)).toBe(false);
    expect(enroll.count()).toBe(0);
    expect(enroll.has(token)).toBe(true);
    expect(enroll.list()).toMatchObject([{ id, name: 'line-1', created_at: 1_000, expires_at: null, revoked_at: Number.MAX_SAFE_INTEGER }]);
  });

  it('refuse a secret that was never issued, or one close to a real token', () => {
    const { enroll } = store();
    enroll.create('line-1', { plain: 'flte_plain-enrollment-secret' });
    expect(enroll.isValid('flte_plain-enrollment-secret')).toBe(true);
    expect(enroll.isValid('flte_plain-enrollment-secre')).toBe(false);
    expect(enroll.isValid('')).toBe(false);
    expect(enroll.has('flte_other')).toBe(false);
  });

  it('list tokens in creation order', () => {
    const { enroll, clock } = store();
    enroll.create('first');
    clock.now = 500;
    enroll.create('earlier', { expiresAt: 900 });
    expect(enroll.list().map((t) => [t.name, t.expires_at])).toEqual([
      ['earlier', 900],
      ['first', null],
    ]);
  });
});

describe('secrets', () => {
  it('make 256-bit random secrets behind their kind prefix', () => {
    const a = newSecret('fltd');
    expect(a).toMatch(/^fltd_[A-Za-z0-9_-]{43}$/);
    expect(newSecret('fltd')).not.toBe(a);
  });

  it('hash a secret as hex sha256, the same for a string and its bytes', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashSecret(Buffer.from('abc'))).toBe(hashSecret('abc'));
  });

  it('compare hashes exactly, and never call two empty or malformed hashes equal', () => {
    const h = hashSecret('abc');
    expect(sameHash(h, h)).toBe(true);
    expect(sameHash(h, hashSecret('abd'))).toBe(false);
    expect(sameHash(h, h.slice(0, -2))).toBe(false);
    expect(sameHash('', '')).toBe(false);
    expect(sameHash('zz', 'zz')).toBe(false);
  });
});
