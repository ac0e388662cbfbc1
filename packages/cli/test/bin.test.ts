import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../../server/test/helpers/server.ts';
import { adminEnv } from './helpers/env.ts';

const bin = fileURLToPath(new URL('../bin/flotilla.mjs', import.meta.url));
const run = promisify(execFile);

describe('the flotilla executable', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs as a process, reads the server and token from the environment, and exits with the CLI status', async () => {
    // One spawn keeps this cheap: reaching the server (URL from the env) and being refused (token from the env) shows both.
    const refused = await run(process.execPath, [bin, 'model', 'list'], { env: { ...process.env, ...adminEnv(t), FLOTILLA_TOKEN: 'flta_wrong' } }).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(refused).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^error: FLT_UNAUTHENTICATED: /) });
  });
});
