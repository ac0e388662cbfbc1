/**
 * Keeps Mosquitto's dynamic-security clients in line with the fleet: a device gets a broker
 * account (password, bound client id, its own role) before it hears its credential, and loses it
 * when it is revoked, rejected or deleted. Removing or changing an account makes mosquitto drop
 * that account's live sessions, which is how revocation takes effect at once.
 */
import { FlotillaError, isValidDeviceId } from '@flotilla/protocol';
import type { Logger } from 'pino';
import type { DynsecApi } from './dynsec-api.ts';
import { FLOTILLA_MARK, SERVER_ROLE, deviceAcls, deviceIdOfRole, deviceRoleName, serverAcls } from './device-acl.ts';

const ALREADY = [/already/i];
const NOT_FOUND = [/not found/i];
const LIST_PAGE = 1_000;

export interface SweepResult {
  /** accounts (or leftover roles) deleted */
  removed: number;
  /** deletions the broker did not confirm; the next sweep retries them */
  failed: number;
  /** Flotilla device accounts the broker held before the sweep */
  accounts: number;
}

type Ownership = 'owned' | 'absent' | 'foreign';

export interface DynsecProvisionerOptions {
  api: DynsecApi;
  logger: Logger;
  /** true when the device is accepted and holds a current credential (the database decides) */
  isActive(deviceId: string): boolean;
}

export class DynsecProvisioner {
  readonly #api: DynsecApi;
  readonly #logger: Logger;
  readonly #isActive: (deviceId: string) => boolean;
  /** one chain per device, so that changes for a device reach the broker in the order they were made */
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(opts: DynsecProvisionerOptions) {
    this.#api = opts.api;
    this.#logger = opts.logger;
    this.#isActive = opts.isActive;
  }

  /**
   * Gives the server's own account the right to publish to devices (dynsec init's admin may only
   * administer). Mosquitto disconnects an account whose roles change, the server's own included,
   * so the role is added without waiting for an answer and checked again after the reconnect.
   */
  async prepareServerAccount(serverUsername: string, reconnected: () => Promise<void>): Promise<void> {
    if (await this.#hasServerRole(serverUsername)) return;
    const acls = serverAcls();
    await this.#api.require([{ command: 'createRole', rolename: SERVER_ROLE, textname: 'flotilla server', acls }], ALREADY);
    const back = reconnected();
    this.#api.run([{ command: 'addClientRole', username: serverUsername, rolename: SERVER_ROLE }]).catch(() => undefined);
    await back;
    if (!(await this.#hasServerRole(serverUsername))) {
      throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', `could not give the broker account ${serverUsername} the ${SERVER_ROLE} role`);
    }
  }

  async #hasServerRole(serverUsername: string): Promise<boolean> {
    const [answer] = await this.#api.require([{ command: 'getClient', username: serverUsername }]);
    const roles = (answer!.data as { client?: { roles?: Array<{ rolename?: unknown }> } } | undefined)?.client?.roles ?? [];
    return roles.some((r) => r.rolename === SERVER_ROLE);
  }

  /** Creates or updates the device's broker account with this credential. Resolves once mosquitto confirmed it. */
  grant(deviceId: string, credential: string): Promise<void> {
    return this.#serial(deviceId, async () => {
      const role = deviceRoleName(deviceId);
      const [roleAnswer, clientAnswer] = await this.#api.run([
        { command: 'createRole', rolename: role, textname: FLOTILLA_MARK, acls: deviceAcls(deviceId) },
        { command: 'createClient', username: deviceId, clientid: deviceId, password: credential, textname: FLOTILLA_MARK, roles: [{ rolename: role }] },
      ]);
      failUnless(roleAnswer!, ALREADY);
      if (clientAnswer!.error === undefined) return;
      failUnless(clientAnswer!, ALREADY);
      // The account exists: change it only if this server made it.
      if ((await this.#ownership(deviceId)) !== 'owned') {
        throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', `broker account ${deviceId} exists and is not a Flotilla device`);
      }
      await this.#api.require(
        [
          // (Its role was given at creation and only goes with the account; mosquitto 2.0 answers
          // "Internal error" to adding a role the client already has.)
          { command: 'setClientId', username: deviceId, clientid: deviceId },
          { command: 'enableClient', username: deviceId },
          // Last: a new password disconnects sessions opened with the old one.
          { command: 'setClientPassword', username: deviceId, password: credential },
        ],
        ALREADY,
      );
    });
  }

  /**
   * Brings the broker in line with the database for one device and cuts its live sessions: an
   * inactive device loses its account, an active one is disconnected (and reconnects with its credential).
   */
  reconcile(deviceId: string): Promise<void> {
    return this.#serial(deviceId, async () => {
      const ownership = await this.#ownership(deviceId);
      if (ownership === 'foreign') {
        this.#logger.warn({ deviceId }, 'broker account with this device id is not a Flotilla device; left alone');
        return;
      }
      if (!this.#isActive(deviceId)) {
        await this.#withdraw(deviceId);
        return;
      }
      if (ownership === 'owned') {
        await this.#api.require([
          { command: 'disableClient', username: deviceId },
          { command: 'enableClient', username: deviceId },
        ]);
      }
    });
  }

  /**
   * Makes dynsec match the database: deletes every Flotilla device account, and every leftover
   * device role, that the database no longer holds as active (a revocation made while the broker
   * was unreachable, a grant that failed halfway). An active device without an account cannot be
   * recreated here (the server keeps only a hash of its credential); it is counted, and the
   * device's next connection is refused, after which the agent enrolls again and is provisioned.
   * Runs at every (re)connect and periodically; the withdrawals go out concurrently and so are
   * coalesced into a few control messages.
   */
  async sweep(): Promise<SweepResult> {
    const clients = await this.#listAll('listClients', 'clients');
    const withdrawals: Promise<void>[] = [];
    const accounts = new Set<string>();
    for (const c of clients as Array<{ username?: unknown; textname?: unknown }>) {
      if (c.textname !== FLOTILLA_MARK || typeof c.username !== 'string' || !isValidDeviceId(c.username)) continue;
      const deviceId = c.username;
      accounts.add(deviceId);
      if (this.#isActive(deviceId)) continue;
      withdrawals.push(this.#serial(deviceId, () => this.#withdraw(deviceId)));
    }
    const roles = await this.#listAll('listRoles', 'roles');
    for (const r of roles as Array<{ rolename?: unknown; textname?: unknown }>) {
      if (r.textname !== FLOTILLA_MARK || typeof r.rolename !== 'string') continue;
      const deviceId = deviceIdOfRole(r.rolename);
      // A role whose account exists goes with the account; an active device's role is kept for its next grant.
      if (deviceId === null || accounts.has(deviceId) || this.#isActive(deviceId)) continue;
      withdrawals.push(this.#serial(deviceId, () => this.#withdraw(deviceId)));
    }
    const outcomes = await Promise.allSettled(withdrawals);
    const failed = outcomes.filter((o) => o.status === 'rejected').length;
    return { removed: outcomes.length - failed, failed, accounts: accounts.size };
  }

  /** Pages through a dynsec list (mosquitto answers a whole list in one message otherwise). */
  async #listAll(command: 'listClients' | 'listRoles', field: 'clients' | 'roles'): Promise<unknown[]> {
    const all: unknown[] = [];
    for (let offset = 0; ; offset += LIST_PAGE) {
      const [answer] = await this.#api.require([{ command, verbose: true, count: LIST_PAGE, offset }]);
      const page = ((answer!.data as Record<string, unknown> | undefined)?.[field] ?? []) as unknown[];
      all.push(...page);
      if (page.length < LIST_PAGE) return all;
    }
  }

  async #withdraw(deviceId: string): Promise<void> {
    await this.#api.require(
      [
        { command: 'deleteClient', username: deviceId },
        { command: 'deleteRole', rolename: deviceRoleName(deviceId) },
      ],
      NOT_FOUND,
    );
  }

  async #ownership(deviceId: string): Promise<Ownership> {
    const [answer] = await this.#api.run([{ command: 'getClient', username: deviceId }]);
    if (answer!.error !== undefined) {
      if (NOT_FOUND.some((re) => re.test(answer!.error!))) return 'absent';
      throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', `getClient: ${answer!.error}`);
    }
    const client = (answer!.data as { client?: { textname?: unknown } } | undefined)?.client;
    return client?.textname === FLOTILLA_MARK ? 'owned' : 'foreign';
  }

  #serial<T>(deviceId: string, step: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(deviceId) ?? Promise.resolve();
    const next = previous.then(step, step);
    const tail = next.catch(() => undefined);
    this.#chains.set(deviceId, tail);
    void tail.then(() => {
      if (this.#chains.get(deviceId) === tail) this.#chains.delete(deviceId);
    });
    return next;
  }
}

function failUnless(answer: { command: string; error?: string }, harmless: readonly RegExp[]): void {
  if (answer.error !== undefined && !harmless.some((re) => re.test(answer.error!))) {
    throw new FlotillaError('FLT_BROKER_PROVISION_FAILED', `${answer.command}: ${answer.error}`);
  }
}
