import { ADMIN_TOKEN, type TestServer } from '../../../../server/test/helpers/server.ts';

/** The environment a CI job would give the CLI: server URL and admin token. */
export function adminEnv(t: TestServer): Record<string, string> {
  return { FLOTILLA_SERVER_URL: t.http, FLOTILLA_TOKEN: ADMIN_TOKEN };
}
