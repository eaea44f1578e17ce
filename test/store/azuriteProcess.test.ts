import fs from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { startAzurite, type AzuriteInstance } from '../helpers/azurite';

const portOf = (endpoint: string) => Number(new URL(endpoint).port);

/** True when nothing accepts connections on the loopback port any more. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('startAzurite', () => {
  const started: AzuriteInstance[] = [];
  afterAll(async () => {
    await Promise.all(started.map((a) => a.stop()));
  });

  it('runs two emulators side by side on distinct free ports, and stop() frees the ports', async () => {
    const [one, two] = await Promise.all([startAzurite(), startAzurite()]);
    started.push(one, two);
    const ports = [one, two].flatMap((a) => [a.blobEndpoint, a.queueEndpoint, a.tableEndpoint].map(portOf));
    expect(new Set(ports).size).toBe(6);

    for (const azurite of [one, two]) {
      expect(azurite.connectionString).toContain(`TableEndpoint=${azurite.tableEndpoint};`);
      const table = TableClient.fromConnectionString(azurite.connectionString, 'probe', { allowInsecureConnection: true });
      await table.createTable();
      await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 1 });
      expect((await table.getEntity('p', 'r')).value).toBe(1);
    }

    await one.stop();
    for (const port of [one.blobEndpoint, one.queueEndpoint, one.tableEndpoint].map(portOf)) {
      expect(await refused(port)).toBe(true);
    }
    // The other one is untouched, and a second stop() is harmless.
    expect(await refused(portOf(two.tableEndpoint))).toBe(false);
    await one.stop();
    await two.stop();
    expect(await refused(portOf(two.tableEndpoint))).toBe(true);
    // Readiness is polled with no short deadline; this limit only guards against a child that never answers.
  }, 10 * 60_000);

  it('restarts on the same ports with its data kept when given a location (the fault suite stops it mid-run)', async () => {
    const location = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-azurite-test-'));
    try {
      const first = await startAzurite({ location });
      started.push(first);
      const table = () => TableClient.fromConnectionString(first.connectionString, 'kept', { allowInsecureConnection: true });
      await table().createTable();
      await table().createEntity({ partitionKey: 'p', rowKey: 'r', value: 7 });
      await first.stop();
      const ports = { blob: portOf(first.blobEndpoint), queue: portOf(first.queueEndpoint), table: portOf(first.tableEndpoint) };
      expect(await refused(ports.table)).toBe(true);

      const second = await startAzurite({ location, ports });
      started.push(second);
      expect(second.connectionString).toBe(first.connectionString);
      expect((await table().getEntity('p', 'r')).value).toBe(7);
      await second.stop();
    } finally {
      fs.rmSync(location, { recursive: true, force: true });
    }
  }, 10 * 60_000);
});
