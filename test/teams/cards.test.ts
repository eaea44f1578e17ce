// Every kind of card NetGuard sends: checked against the Adaptive Card 1.5 element set, and parsed
// by the official `adaptivecards` renderer in jsdom when those two packages are installed.
import { controlById } from '../../shared/controls/index';
import { AddressSet } from '../../shared/net/addressSet';
import type { ApprovalRecord } from '../../shared/store/types';
import {
  buildApprovalCard,
  buildDecidedCard,
  buildDigest,
  buildRemediationCard,
  escapeMarkdown,
  type AdaptiveCard,
  type DigestHistory,
} from '../../shared/teams/cards';
import { summarize, type Finding } from '../../shared/types';
import { validateCard15 } from './adaptiveCard15';
import { CLUSTER_ID } from './harness';

const NSG_ID = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/MC_rg/providers/Microsoft.Network/networkSecurityGroups/aks-agentpool-nsg';

const approval: ApprovalRecord = {
  id: `node-ssh-deny|${NSG_ID.toLowerCase()}`,
  control: 'node-ssh-deny',
  clusterId: CLUSTER_ID,
  targetId: NSG_ID,
  state: 'pending',
  detail: 'Rule allow-ssh (priority 100) allows TCP/22 from 10.224.0.0/16 to the node subnet.',
  change: {
    kind: 'security-rule',
    nsgId: NSG_ID,
    ruleName: 'allow-ssh',
    before: { protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 100, sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*' },
    after: { protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 100, sourceAddressPrefix: '192.168.7.0/24', destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*' },
    needsPerson: true,
    summary: 'Narrow allow-ssh to sources outside the AKS subnets.',
  },
  reason: 'the fix changes an existing Allow rule, which needs a person',
  requestedAt: '2026-11-20T08:00:00.000Z',
  expiresAt: '2026-11-21T08:00:00.000Z',
  changedBy: 'carol@contoso.com',
};

// The fleet's aks-allow-ssh-100 case: an Allow for SSH from 10.0.0.0/8 narrowed by the AKS subnet 10.9.0.0/22.
const narrowedSources = AddressSet.fromPrefixes(['10.0.0.0/8']).subtract(AddressSet.fromPrefixes(['10.9.0.0/22'])).toCidrs();
const narrowing: ApprovalRecord = {
  ...approval,
  change: {
    ...approval.change,
    kind: 'security-rule',
    nsgId: NSG_ID,
    ruleName: 'allow-ssh-jumphosts',
    before: { protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 100, sourceAddressPrefix: '10.0.0.0/8', destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*' },
    after: { protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 100, sourceAddressPrefixes: narrowedSources, destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*' },
  },
};

const finding = (control: Finding['control'], status: Finding['status'], action: Finding['action'], targetId = CLUSTER_ID): Finding => ({
  control,
  resourceId: CLUSTER_ID,
  targetId,
  status,
  action,
  detail: 'x',
});

function sampleCards(): Record<string, AdaptiveCard> {
  const findings = [
    finding('node-ssh-deny', 'drift', 'approval-requested', NSG_ID),
    finding('api-authorized-ranges', 'compliant', 'none'),
    finding('http-application-routing', 'drift', 'remediated'),
    finding('network-policy', 'drift', 'reported'),
    finding('egress-lockdown', 'exempt', 'skipped'),
    finding('service-mesh', 'error', 'none'),
  ];
  const report = { findings, summary: summarize(findings, 1) };
  const history: DigestHistory = {
    previous: { at: '2026-11-19T06:00:00.000Z', counts: { 'network-policy': { compliant: 1, drift: 0, remediated: 0, waiting: 0, exempt: 0 } }, openDrift: [`service-mesh|${CLUSTER_ID.toLowerCase()}`] },
    days: Array.from({ length: 16 }, (_, i) => ({ date: `2026-11-${String(i + 4).padStart(2, '0')}`, drift: i % 5, remediated: i % 3 })),
    recurring: [{ control: 'http-application-routing', targetId: CLUSTER_ID, times: 4 }],
  };
  return {
    approval: buildApprovalCard(approval, { nonce: 'n0nce', approvers: ['a'] }),
    approvalNobody: buildApprovalCard(approval, { nonce: 'n0nce', approvers: [] }),
    approvalNarrowing: buildApprovalCard(narrowing, { nonce: 'n0nce', approvers: ['a'] }),
    remediationNarrowing: buildRemediationCard({ finding: finding('node-ssh-deny', 'drift', 'remediated', NSG_ID), change: narrowing.change, changedBy: 'sam@contoso.com', at: '2026-11-20T09:00:00Z' }),
    applied: buildDecidedCard(approval, 'Rido', '2026-11-20T09:00:00Z', { kind: 'applied', detail: 'Verified.' }),
    failed: buildDecidedCard(approval, 'Rido', '2026-11-20T09:00:00Z', { kind: 'failed', detail: 'ARM said 409.' }),
    exempted: buildDecidedCard(approval, 'Rido', '2026-11-20T09:00:00Z', { kind: 'exempted', until: '2026-11-27T09:00:00Z' }),
    expired: buildDecidedCard(approval, 'Rido', '2026-11-22T09:00:00Z', { kind: 'expired' }),
    remediation: buildRemediationCard({ finding: finding('http-application-routing', 'drift', 'remediated'), change: approval.change, at: '2026-11-20T09:00:00Z' }),
    digest: buildDigest(report, history, [approval, { ...approval, id: 'b', requestedAt: '2026-11-18T08:00:00.000Z', delivered: false }], '2026-11-20T06:00:00.000Z'),
    firstDigest: buildDigest(report, { days: [], recurring: [] }, [], '2026-11-20T06:00:00.000Z'),
  };
}

test.each(Object.entries(sampleCards()))('the %s card uses only the Adaptive Card 1.5 element set', (_name, card) => {
  expect(validateCard15(card)).toEqual([]);
});

test('the element-set check itself catches what 1.5 does not have', () => {
  const bad = { type: 'AdaptiveCard', version: '1.6', body: [{ type: 'Chart.Line' }, { type: 'TextBlock', text: 'x', colour: 'red' }, { type: 'ColumnSet', columns: [{ type: 'Column', width: '3em', items: [] }] }] };
  const problems = validateCard15(bad);
  expect(problems).toEqual(
    expect.arrayContaining([
      expect.stringContaining('version must be "1.5"'),
      expect.stringContaining('"Chart.Line" is not in Adaptive Cards 1.5'),
      expect.stringContaining('"colour" is not part of TextBlock'),
      expect.stringContaining('width "3em"'),
    ]),
  );
});

test('the approval card carries the nonce and approval id on every button, and the change before → after', () => {
  const card = sampleCards().approval;
  const actions = (card.body.find((e) => e.type === 'ActionSet') as unknown as { actions: Array<{ verb: string; data: Record<string, string> }> }).actions;
  expect(actions.map((a) => a.verb)).toEqual(['netguard.approve', 'netguard.reject', 'netguard.exempt']);
  for (const a of actions) expect(a.data).toMatchObject({ approvalId: approval.id, nonce: 'n0nce' });
  const text = JSON.stringify(card);
  expect(text).toContain('sources: * → 192.168.7.0/24');
  expect(text).toContain('carol@contoso.com');
  expect(text).toContain('2026-11-20 08:00 UTC');
  expect(JSON.stringify(sampleCards().approvalNobody)).toContain('Nobody can approve yet');
});

type Node = { type?: string; id?: string; text?: string; isVisible?: boolean; items?: Node[]; actions?: Array<{ type: string; targetElements?: string[] }> };
/** The text a person sees without clicking anything (hidden containers skipped). */
function visibleText(nodes: Node[]): string[] {
  return nodes.flatMap((n) => (n.isVisible === false ? [] : [...(n.text ? [n.text] : []), ...visibleText(n.items ?? [])]));
}

test('a narrowed Allow reads as "10.0.0.0/8 minus 10.9.0.0/22"; the exact 14 prefixes are one click away, one per line', () => {
  expect(narrowedSources).toHaveLength(14);
  const card = buildApprovalCard(narrowing, { nonce: 'n', approvers: ['a'] });
  const seen = visibleText(card.body as Node[]);
  expect(seen).toContain('sources: 10.0.0.0/8 → 10.0.0.0/8 minus 10.9.0.0/22');
  // None of the narrowed list shows as text until asked for.
  for (const p of narrowedSources.filter((p) => p !== '10.0.0.0/8')) expect(seen.join('\n')).not.toContain(p);
  const hidden = (card.body as Node[]).find((n) => n.type === 'Container' && n.isVisible === false)!;
  const toggle = (card.body as Node[]).flatMap((n) => n.actions ?? []).find((a) => a.type === 'Action.ToggleVisibility')!;
  expect(toggle.targetElements).toEqual([hidden.id]);
  const exact = (hidden.items ?? []).map((i) => i.text);
  for (const p of narrowedSources) expect(exact).toContain(p);
  expect(exact).toContain('10.0.0.0/8');
  expect(validateCard15(card)).toEqual([]);
});

test('the approval card\'s title names the control and the cluster, without the control\'s policy sentence', () => {
  const card = buildApprovalCard(approval, { nonce: 'n', approvers: ['a'] });
  const title = visibleText([card.body[0] as Node])[0];
  expect(title).toMatch(/^Approval needed: node-ssh-deny on aks\\?-prod$/);
  expect(title).not.toContain(controlById('node-ssh-deny').description);
});

test('the digest headline counts clusters as clusters and findings as findings', () => {
  const card = sampleCards().digest;
  // One cluster with 3 drifted findings (1 fixed, 1 waiting, 1 reported), 1 exempt, 1 error.
  expect(visibleText(card.body as Node[])).toContain('1 cluster judged, 1 with drift. 3 findings drifted: 1 fixed, 1 waiting for approval, 1 reported only. 1 finding exempt, 1 error.');
});

test('the fix notice says who caused the drift, apart from when NetGuard fixed it', () => {
  const card = buildRemediationCard({ finding: finding('http-application-routing', 'drift', 'remediated'), change: approval.change, changedBy: 'dana.dev@contoso.com', at: '2026-11-20T09:00:00Z' });
  const factSet = card.body.find((e) => e.type === 'FactSet') as unknown as { facts: Array<{ title: string; value: string }> };
  const facts = Object.fromEntries(factSet.facts.map((f) => [f.title, f.value]));
  expect(facts['Drift caused by']).toBe('dana.dev@contoso.com');
  expect(facts['Changed by']).toBeUndefined();
  expect(facts['Fixed by NetGuard at']).toBe('2026-11-20 09:00 UTC');
});

test('the digest: per-control counts, what changed, oldest approval first, recurring drift, 14 bars', () => {
  const card = sampleCards().digest;
  const text = JSON.stringify(card);
  const table = card.body.find((e) => e.type === 'Table') as unknown as { rows: Array<{ cells: Array<{ items: Array<{ text: string }> }> }> };
  const row = (control: string) => table.rows.find((r) => r.cells[0].items[0].text === control)!.cells.slice(1).map((c) => Number(c.items[0].text));
  // compliant, drift, remediated, waiting, exempt
  expect(row('node-ssh-deny')).toEqual([0, 1, 0, 2, 0]);
  expect(row('http-application-routing')).toEqual([0, 0, 1, 0, 0]);
  expect(row('egress-lockdown')).toEqual([0, 0, 0, 0, 1]);
  expect(row('api-authorized-ranges')).toEqual([1, 0, 0, 0, 0]);
  expect(text).toContain('new drift: network-policy');
  expect(text).toContain('no longer drifting: service-mesh');
  expect(text.indexOf('2026-11-18 08:00')).toBeLessThan(text.indexOf('2026-11-20 08:00'));
  expect(text).toContain('card not delivered yet');
  expect(text).toContain('fixed 4 times');
  const bars = card.body.filter((e) => e.type === 'ColumnSet');
  expect(bars).toHaveLength(14);
  expect(JSON.stringify(sampleCards().firstDigest)).toContain('This is the first digest.');
});

test('resource names cannot inject markdown links', () => {
  expect(escapeMarkdown('evil](https://x.example)')).toBe('evil\\]\\(https://x\\.example\\)');
});

// The official renderer (adaptivecards 3, a devDependency) in jsdom. Its lib/ build is ESM without
// file extensions, which Node cannot load; the UMD bundle in dist/ is the same code.
function officialRenderer(): { AC: any; JSDOM: any } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { JSDOM } = require('jsdom');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const AC = require('adaptivecards/dist/adaptivecards.js');
  return { AC, JSDOM };
}
const renderer = officialRenderer();
test.each(Object.entries(sampleCards()))(
  'the official adaptivecards renderer parses and renders the %s card without warnings',
  (_name, json) => {
    const { AC, JSDOM } = renderer!;
    const dom = new JSDOM('<!doctype html><html><body></body></html>');
    const g = globalThis as any;
    // The renderer reaches for DOM classes (HTMLButtonElement, …) as globals, as in a browser.
    const names = ['window', 'document', 'navigator', ...Object.getOwnPropertyNames(dom.window).filter((n) => /^(HTML|SVG|Node$|Element$|Event$|KeyboardEvent$|MouseEvent$)/.test(n))];
    const saved = Object.fromEntries(names.map((n) => [n, g[n]]));
    Object.assign(g, Object.fromEntries(names.map((n) => [n, n === 'window' ? dom.window : (dom.window as any)[n]])));
    try {
      const card = new AC.AdaptiveCard();
      const context = new AC.SerializationContext(AC.Versions.v1_5);
      card.parse(json, context);
      const events = context.eventCount ? Array.from({ length: context.eventCount }, (_, i) => context.getEventAt(i)) : [];
      expect(events.map((e: any) => `${e.phase} ${e.event}: ${e.message}`)).toEqual([]);
      const rendered = card.render();
      expect(rendered).toBeTruthy();
      expect(card.validateProperties().failures ?? []).toEqual([]);
    } finally {
      Object.assign(g, saved);
    }
  },
);
