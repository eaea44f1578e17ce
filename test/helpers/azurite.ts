// Tests start Azurite exactly as the CLI's demo does; see testkit/azuriteProcess.ts.
export { startAzurite, azuriteConnectionString, AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME } from '../../testkit/azuriteProcess';
export type { AzuriteInstance, StartAzuriteOptions } from '../../testkit/azuriteProcess';

import { startAzurite as start, type AzuriteInstance as Instance } from '../../testkit/azuriteProcess';

/**
 * One Azurite for the test file: started before its first test, stopped after its last. The
 * returned object reads through to the running instance, so it can be used in hooks and tests.
 */
export function useAzurite(): Instance {
  let instance: Instance | undefined;
  // Readiness is polled (see startAzurite); the hook's own limit only guards against a child that
  // never answers, and is ample for a loaded 2-core machine where eight suites start at once.
  beforeAll(async () => {
    instance = await start();
  }, 10 * 60_000);
  afterAll(async () => {
    await instance?.stop();
  });
  const running = (): Instance => {
    if (!instance) throw new Error('Azurite is not running yet: use it inside a hook or a test.');
    return instance;
  };
  return {
    get connectionString() {
      return running().connectionString;
    },
    get blobEndpoint() {
      return running().blobEndpoint;
    },
    get queueEndpoint() {
      return running().queueEndpoint;
    },
    get tableEndpoint() {
      return running().tableEndpoint;
    },
    stop: () => running().stop(),
    kill: () => running().kill(),
  };
}
