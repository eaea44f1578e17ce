// The layout taken through the approval loop: the sweep asks a person (moving NetGuard's
// broadened rule before the Allow at 300 would also cut SSH that Allow gives the rest of the VNet),
// an approver approves in Teams, and the engine applies the repair through the write gate: the AKS
// subnets are denied, the internet address stays denied, the person's `*` is kept.
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmSecurityRule } from '../../shared/azure/armTypes';
import { loadSettings } from '../../shared/config';
import { Engine } from '../../shared/engine/engine';
import { nodeSshDeny } from '../../shared/controls/nodeSshDeny';
import type { Control } from '../../shared/controls/types';
import { deliverNotice } from '../../shared/notify/queueSink';
import type { ArmSandbox } from '../../testkit/armServer';
import type { ApprovalActionData } from '../../shared/teams/cards';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import { useAzurite } from '../helpers/azurite';
import { onlyFinding, sshDecisionInSandbox, startSandbox } from '../helpers/sandboxEnv';
import { APPROVER, cardClick, channelMessage, startHarness, type Harness } from '../teams/harness';
import { OUTSIDER, SUB, seedBroadenedRule } from './scenarios';

const CHANNEL = '19:abcd0000000000000000000000000009@thread.tacv2';
const azurite = useAzurite();
let sandbox: ArmSandbox;
let h: Harness;
let engine: Engine;

beforeEach(async () => {
  sandbox = await startSandbox();
  let real: Engine | undefined;
  h = await startHarness(azurite, { approvers: [APPROVER], executor: { executeApproval: (a, by) => real!.executeApproval(a, by) } });
  const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_APPROVERS: APPROVER });
  engine = real = new Engine({ arm: new ArmGateway({ endpoint: sandbox.endpoint, pollIntervalMs: 5 }), settings, store: h.store, exemptions: h.tables });
  await h.post(channelMessage(h, 'subscribe', CHANNEL));
  h.connector.calls.length = 0;
});

afterEach(async () => {
  await h.connector.stop();
  await sandbox.stop();
});

test('the auto sweep asks a person; the approved repair denies the AKS subnets and keeps the internet denied', async () => {
  const { clusterId, nsgId, nodeSubnetId } = seedBroadenedRule(sandbox);
  const first = await engine.sweep([SUB]);
  expect(onlyFinding(first, clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'approval-requested' });
  const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'node-ssh-deny')!;
  expect(approval.change.summary).toMatch(/A person must approve, because it would also deny .*10\.60\./);

  await deliverNotice({ kind: 'approval-requested', approval }, { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });
  const posted = h.connector.posted();
  const copy = posted[posted.length - 1];
  const card = copy.body.attachments[0].content;
  const actions = card.body.find((e: any) => e.type === 'ActionSet').actions as Array<{ verb: string; data: ApprovalActionData }>;
  const approve = actions.find((b) => b.data.action === 'approve')!;
  const res = await h.post(cardClick(h, { replyToId: `1:${posted.length}`, conversationId: copy.conversationId, verb: approve.verb, data: approve.data }));
  expect(res.status).toBe(200);
  expect(JSON.stringify(res.body.value)).toMatch(/Approved by .*: done/);

  expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId)).toBe('Deny');
  expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId, [OUTSIDER])).toBe('Deny');
  const rule = sandbox.get<ArmSecurityRule>(`${nsgId}/securityRules/aks-netguard-deny-node-ssh`)!.properties;
  expect(rule.sourceAddressPrefix).toBe('*');
  expect(rule.priority).toBeLessThan(300);
  const next = await engine.sweep([SUB]);
  expect(onlyFinding(next, clusterId, 'node-ssh-deny').status).toBe('compliant');
}, 60_000);

test('a widening write planned by a control is refused with storage too: error finding, audited as write-refused, nothing written', async () => {
  const { clusterId, nsgId } = seedBroadenedRule(sandbox);
  const original = nodeSshDeny.plan;
  // The repair as it used to be: NetGuard's rule cut back to the AKS subnet, before the Allow at 300.
  (nodeSshDeny as Control).plan = (judgement, observation) => {
    const existing = observation.topology.nsg(judgement.targetId)!.properties.securityRules!.find((r) => r.name === 'aks-netguard-deny-node-ssh')!;
    return {
      kind: 'security-rule',
      nsgId,
      ruleName: existing.name,
      ifMatch: existing.etag,
      before: existing.properties,
      after: { ...existing.properties, sourceAddressPrefix: undefined, sourceAddressPrefixes: ['10.60.0.0/22'], priority: 299 },
      needsPerson: false,
      summary: 'the old repair',
    };
  };
  try {
    const report = await engine.sweep([SUB], { cliMode: 'auto' });
    expect(onlyFinding(report, clusterId, 'node-ssh-deny')).toMatchObject({ status: 'error', action: 'none' });
  } finally {
    (nodeSshDeny as Control).plan = original;
  }
  expect(sandbox.findRequests((r) => r.method !== 'GET' && r.path.toLowerCase().startsWith(nsgId.toLowerCase()))).toEqual([]);
  const audit = (await h.store.listAudit()).filter((a) => a.targetId.toLowerCase() === nsgId.toLowerCase());
  // The intent is recorded before the gate judges the write as sent; the refusal names the intent's outcome.
  expect(audit.map((a) => a.event).sort()).toEqual(['intent', 'write-refused']);
  expect(audit.find((a) => a.event === 'write-refused')!.detail).toMatch(/would allow traffic that is denied now/);
}, 60_000);
