// The azd preprovision hook (infra/hooks/preprovision.sh), run by sh as azd runs it, with a fake `az`
// and a fake `azd` first on PATH: each records its arguments, and `az` answers from canned files (what
// the Azure CLI prints for `-o tsv`). Checked: what it removes for a subscription dropped from the
// list (the role assignment first), and which existing system topics it hands to Bicep.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './bicep';

const HOOK = path.join(REPO, 'infra', 'hooks', 'preprovision.sh');
const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';
const D = '44444444-4444-4444-8444-444444444444';
const HOME = '99999999-9999-4999-8999-999999999999';
const PRINCIPAL = '0b5e1e0d-1111-4222-8333-944455556666';
const ROLE = '5f1b1c84-77a1-5bd4-a7f2-1f0c6c0ef0aa';
const foreignTopic = (sub: string) => `/subscriptions/${sub}/resourceGroups/rg-shared-events/providers/Microsoft.EventGrid/systemTopics/defender-topic`;
const ownTopic = (sub: string) => `/subscriptions/${sub}/resourceGroups/rg-prod-events/providers/Microsoft.EventGrid/systemTopics/evgt-netguard-prod`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-hook-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  // Both fakes log one line per call; az prints topics-<sub>.tsv for a topic list, "true" for group exists.
  const fake = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> "$FAKE_DIR/calls.log"\n${body}\n`, { mode: 0o755 });
  fake(
    'az',
    [
      'if [ -n "${FAKE_AZ_FAIL:-}" ]; then echo "ERROR: Please run az login" >&2; exit 1; fi',
      'case "$*" in',
      '  "eventgrid system-topic list --subscription "*) f="$FAKE_DIR/topics-$5.tsv"; [ -f "$f" ] && cat "$f"; exit 0 ;;',
      '  "group exists "*) echo true; exit 0 ;;',
      'esac',
    ].join('\n'),
  );
  fake('azd', '');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A topic list as `az eventgrid system-topic list --query "[].[id, topicType, source]" -o tsv` prints it. */
function topics(sub: string, rows: Array<[id: string, type: string, source: string]>): void {
  fs.writeFileSync(path.join(dir, `topics-${sub}.tsv`), rows.map((r) => r.join('\t')).join('\n') + '\n');
}

function runHook(env: Record<string, string>): { status: number | null; calls: string[]; stderr: string; stdout: string } {
  const r = spawnSync('sh', [HOOK], {
    encoding: 'utf8',
    env: { PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, FAKE_DIR: dir, AZURE_ENV_NAME: 'prod', AZURE_SUBSCRIPTION_ID: HOME, ...env },
  });
  const log = path.join(dir, 'calls.log');
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [] };
}

const lastProvision = {
  NETGUARD_IDENTITY_PRINCIPAL_ID: PRINCIPAL,
  NETGUARD_ROLE_DEFINITION_NAME: ROLE,
};

test('a dropped subscription loses its role assignment before anything else, then NetGuard\'s own events group', () => {
  const r = runHook({ ...lastProvision, AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: `${A},${B}`, NETGUARD_WATCHED_SUBSCRIPTIONS: `${A},${B},${C}` });
  expect(r.status).toBe(0);
  expect(r.calls[0]).toBe(`az role assignment delete --assignee ${PRINCIPAL} --role ${ROLE} --scope /subscriptions/${C} --subscription ${C} --only-show-errors`);
  expect(r.calls).toContain(`az group delete --subscription ${C} --name rg-prod-events --yes --no-wait --only-show-errors`);
  // Nothing is removed in the subscriptions still watched.
  expect(r.calls.filter((c) => / delete /.test(c) && (c.includes(A) || c.includes(B)))).toEqual([]);
  // The deletes come before the topic lookups, and the lookups cover exactly the watched subscriptions.
  const firstList = r.calls.findIndex((c) => c.startsWith('az eventgrid system-topic list'));
  expect(r.calls.slice(0, firstList).every((c) => /delete|group exists/.test(c))).toBe(true);
  expect(r.calls.filter((c) => c.startsWith('az eventgrid system-topic list')).map((c) => c.split(' ')[5])).toEqual([A, B]);
});

test('a dropped subscription that used an existing topic loses only NetGuard\'s event subscription there', () => {
  const r = runHook({ ...lastProvision, AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: A, NETGUARD_WATCHED_SUBSCRIPTIONS: `${A},${D}`, NETGUARD_EXISTING_SYSTEM_TOPICS: foreignTopic(D) });
  expect(r.status).toBe(0);
  expect(r.calls[0]).toMatch(new RegExp(`^az role assignment delete .*--scope /subscriptions/${D} `));
  expect(r.calls).toContain(`az eventgrid system-topic event-subscription delete --subscription ${D} --resource-group rg-shared-events --system-topic-name defender-topic --name netguard-on-resource-event --yes --only-show-errors`);
  expect(r.calls.some((c) => c.startsWith('az group delete'))).toBe(false);
});

test('hands Bicep the system topics that already exist, never NetGuard\'s own nor another kind', () => {
  topics(A, [
    [`/subscriptions/${A}/resourceGroups/rg-x/providers/Microsoft.EventGrid/systemTopics/storage-topic`, 'Microsoft.Storage.StorageAccounts', `/subscriptions/${A}/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/st1`],
    [foreignTopic(A), 'microsoft.resources.subscriptions', `/subscriptions/${A}`],
  ]);
  topics(B, [[ownTopic(B), 'Microsoft.Resources.Subscriptions', `/subscriptions/${B}`]]);
  const r = runHook({ AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: ` ${A} , ${B} ` });
  expect(r.status).toBe(0);
  expect(r.calls.filter((c) => / delete /.test(c))).toEqual([]);
  expect(r.calls[r.calls.length - 1]).toBe(`azd env set AKS_NETGUARD_EXISTING_SYSTEM_TOPICS ${foreignTopic(A)}`);
  expect(r.stdout).toContain(`subscription ${A} already has a system topic`);
});

test('with no watched list it looks at the deployment subscription only, and says so when nothing exists', () => {
  const r = runHook({});
  expect(r.status).toBe(0);
  expect(r.calls[0]).toBe(`az eventgrid system-topic list --subscription ${HOME} --query [].[id, topicType, source] -o tsv --only-show-errors`);
  expect(r.calls.slice(1)).toEqual([expect.stringMatching(/^azd env set AKS_NETGUARD_EXISTING_SYSTEM_TOPICS ?$/)]);
});

test('a failing Azure CLI stops the provision instead of guessing', () => {
  const r = runHook({ AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: A, FAKE_AZ_FAIL: '1' });
  expect(r.status).not.toBe(0);
  expect(r.calls.some((c) => c.startsWith('azd env set'))).toBe(false);
});
