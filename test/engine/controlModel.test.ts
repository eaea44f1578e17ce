// The control model: the engine learns what to read, judge and grant from each control's declared
// needs, never from its id. These tests read the declarations and the engine's source as they are.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CONTROLS } from '../../shared/controls/index';
import { CHANGE_PERMISSIONS, READ_PERMISSIONS } from '../../shared/controls/needs';
import { controlsReading } from '../../shared/engine/observeCluster';
import { CONTROL_IDS } from '../../shared/types';

const ENGINE = path.join(__dirname, '..', '..', 'shared', 'engine');

test('no module of the engine names a control', () => {
  const named: string[] = [];
  for (const file of readdirSync(ENGINE).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(path.join(ENGINE, file), 'utf8');
    for (const id of CONTROL_IDS) if (text.includes(`'${id}'`) || text.includes(`"${id}"`)) named.push(`${file}: ${id}`);
  }
  expect(named).toEqual([]);
});

test('every control is in CONTROL_IDS once, declares what it reads, and plans only kinds that have permissions', () => {
  expect(CONTROLS.map((c) => c.id).sort()).toEqual([...CONTROL_IDS].sort());
  for (const c of CONTROLS) {
    expect(c.needs.reads.length).toBeGreaterThan(0);
    for (const r of c.needs.reads) expect(READ_PERMISSIONS[r]).toBeDefined();
    for (const k of c.needs.changes) expect(CHANGE_PERMISSIONS[k]).toBeDefined();
  }
});

test('what an event re-reads decides which controls it judges: the network alone, the cluster too, never Kubernetes objects', () => {
  const ids = (parts: Parameters<typeof controlsReading>[0]) => controlsReading(parts).map((c) => c.id).sort();
  expect(ids(['nsg-topology'])).toEqual(['node-ssh-deny']);
  expect(ids(['cluster-properties', 'nsg-topology'])).toEqual(CONTROL_IDS.filter((c) => c !== 'instance-metadata').sort());
  expect(ids(['cluster-properties', 'nsg-topology', 'kubernetes-objects'])).toEqual([...CONTROL_IDS].sort());
});
