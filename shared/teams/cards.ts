// Adaptive Cards (schema 1.5) that NetGuard posts to Teams. Pure functions: data in, card JSON out,
// so every card can be checked without Teams (test/teams/cards.test.ts validates each one against
// the 1.5 element set). Nothing here imports the Teams SDK.
import { lastSegment, portalUrl } from '../azure/ids';
import { controlById } from '../controls/index';
import type { KubeNetworkPolicyChange, PlannedChange } from '../controls/types';
import { AddressSet, isAddressPrefix } from '../net/addressSet';
import type { ApprovalRecord } from '../store/types';
import { CONTROL_IDS, type ControlId, type Finding, type RunReport } from '../types';

export const CARD_VERSION = '1.5';
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

/** The verbs of the approval card's Action.Execute buttons. */
export const APPROVAL_VERBS = {
  approve: 'netguard.approve',
  reject: 'netguard.reject',
  exempt: 'netguard.exempt',
} as const;
export type ApprovalAction = keyof typeof APPROVAL_VERBS;
export const EXEMPTION_DAYS = 7;

/** What an approval button carries back: the card's nonce ties the click to one delivered request. */
export interface ApprovalActionData {
  approvalId: string;
  action: ApprovalAction;
  nonce: string;
}

// A loose JSON shape: the cards are checked against the 1.5 element set by the tests, not by types.
export type CardElement = { type: string; [key: string]: unknown };
export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: string;
  version: string;
  body: CardElement[];
  actions?: CardElement[];
  msteams?: { width?: 'Full' };
  [key: string]: unknown;
}

const card = (body: CardElement[], extra: Partial<AdaptiveCard> = {}): AdaptiveCard => ({
  type: 'AdaptiveCard',
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
  version: CARD_VERSION,
  body,
  msteams: { width: 'Full' },
  ...extra,
});

type TextOptions = {
  size?: 'Small' | 'Default' | 'Medium' | 'Large';
  weight?: 'Lighter' | 'Default' | 'Bolder';
  color?: 'Default' | 'Accent' | 'Good' | 'Warning' | 'Attention';
  isSubtle?: boolean;
  spacing?: 'None' | 'Small' | 'Medium';
  fontType?: 'Monospace';
};
const text = (value: string, options: TextOptions = {}): CardElement => ({ type: 'TextBlock', text: value, wrap: true, ...options });
const facts = (rows: Array<[string, string]>): CardElement => ({
  type: 'FactSet',
  facts: rows.map(([title, value]) => ({ title, value })),
});

/** Markdown special characters are escaped so a resource name cannot inject links or formatting. */
export function escapeMarkdown(value: string): string {
  return value.replace(/([\\`*_{}[\]()#+\-.!<>|~])/g, '\\$1');
}
const link = (id: string) => `[${escapeMarkdown(lastSegment(id))}](${portalUrl(id)})`;

/**
 * A person's name from an event's claims, which that person (or whoever registered their app, or a
 * guest's home tenant) chooses: the characters that make Markdown links and emphasis are escaped, so
 * a name can never become clickable text. Dots and dashes stay (e-mail addresses read as they are).
 */
export function escapeName(value: string): string {
  return value.replace(/([\\`*_[\]()<>])/g, '\\$1');
}

/** The control's rule in one sentence (the id alone when the control is unknown). */
export function controlPolicy(control: ControlId): string | undefined {
  try {
    return controlById(control).description;
  } catch {
    return undefined;
  }
}

export function controlTitle(control: ControlId): string {
  const policy = controlPolicy(control);
  return policy ? `${control}: ${policy}` : control;
}

/** The policy sentence as a quiet line under a card's headline (the headline names only the control). */
const policyLine = (control: ControlId): CardElement[] => {
  const policy = controlPolicy(control);
  return policy ? [text(`${control}: ${policy}`, { isSubtle: true, size: 'Small' })] : [];
};

/** "2026-11-27 13:05 UTC": the same text for everyone in the channel, whatever their time zone. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return 'unknown';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const showValue = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

/** A rule's address fields: one prefix or a list, for sources and for destinations. */
const ADDRESS_FIELDS = [
  { label: 'sources', single: 'sourceAddressPrefix', list: 'sourceAddressPrefixes' },
  { label: 'destinations', single: 'destinationAddressPrefix', list: 'destinationAddressPrefixes' },
] as const;
const ADDRESS_KEYS: ReadonlySet<string> = new Set(ADDRESS_FIELDS.flatMap((f) => [f.single, f.list]));

/** The prefixes a rule names on one side (the list and the single field together), or [] for none. */
function prefixesOf(rule: Record<string, unknown> | undefined, field: (typeof ADDRESS_FIELDS)[number]): string[] {
  if (!rule) return [];
  const list = Array.isArray(rule[field.list]) ? (rule[field.list] as unknown[]).map(String) : [];
  const single = typeof rule[field.single] === 'string' && rule[field.single] !== '' ? [rule[field.single] as string] : [];
  return [...single, ...list];
}

/** The addresses a prefix list stands for; undefined when it names a service tag (not an address set). */
function addressesOf(prefixes: string[]): AddressSet | undefined {
  if (prefixes.some((p) => p !== '*' && !isAddressPrefix(p))) return undefined;
  return prefixes.includes('*') ? AddressSet.all() : AddressSet.fromPrefixes(prefixes);
}

/** Names beyond this many are summarised as "and N more" (the exact list is one click away). */
const SHORT_LIST = 4;
const shortList = (items: string[]): string =>
  items.length === 0 ? '(none)' : items.length <= SHORT_LIST ? items.join(', ') : `${items.slice(0, SHORT_LIST - 1).join(', ')} and ${items.length - SHORT_LIST + 1} more`;

/**
 * What a person can check: a narrowed list reads as what it was minus what was taken out
 * ("10.0.0.0/8 minus 10.9.0.0/22"), computed from the address sets, not from the list's shape.
 */
export function readablePrefixes(before: string[], after: string[]): string {
  const was = addressesOf(before);
  const now = addressesOf(after);
  if (before.length && was && now && was.containsAll(now) && !now.equals(was)) {
    const removed = was.subtract(now).toCidrs();
    if (removed.length <= SHORT_LIST) return `${shortList(before)} minus ${removed.join(', ')}`;
  }
  return shortList(after);
}

/** The readable change, before → after, one line per property that differs (address lists condensed). */
export function describeChange(change: PlannedChange): string[] {
  if (change.kind === 'cluster-property') {
    return [`${change.path.join('.')}: ${showValue(change.before)} → ${showValue(change.after)}`];
  }
  if (change.kind === 'kube-network-policy') {
    // The plan: the namespaces NetGuard fixes, and those left to a person with the policies to edit.
    return [
      ...change.writes.map((w) => `${w.method === 'create' ? 'create' : 'put back'} NetworkPolicy ${w.name} in ${w.namespace}${w.resourceVersion ? ` (resourceVersion ${w.resourceVersion})` : ''}`),
      ...change.leftToPerson.map((p) => `left to a person: ${p.namespace}: ${p.reason}`),
    ];
  }
  const before = (change.before ?? undefined) as unknown as Record<string, unknown> | undefined;
  const after = change.after as unknown as Record<string, unknown>;
  const lines: string[] = [];
  for (const field of ADDRESS_FIELDS) {
    const was = prefixesOf(before, field);
    const now = prefixesOf(after, field);
    if (JSON.stringify(was) === JSON.stringify(now)) continue;
    lines.push(before ? `${field.label}: ${shortList(was)} → ${readablePrefixes(was, now)}` : `${field.label}: ${shortList(now)}`);
  }
  const verb = change.before ? 'update' : 'create';
  return [`${verb} rule ${change.ruleName} on ${lastSegment(change.nsgId)}`, ...lines, ...ruleDiff(change).filter((d) => !ADDRESS_KEYS.has(d.key)).map((d) => d.line)];
}

/** Every property of a rule that differs, exactly (JSON values), except the provisioning state. */
function ruleDiff(change: Extract<PlannedChange, { kind: 'security-rule' }>): Array<{ key: string; line: string }> {
  const before = (change.before ?? {}) as unknown as Record<string, unknown>;
  const after = change.after as unknown as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => k !== 'provisioningState');
  return keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).map((k) => ({ key: k, line: `${k}: ${showValue(before[k])} → ${showValue(after[k])}` }));
}

/**
 * The exact address lists of a rule change, one prefix per line, when the readable form condensed
 * them; undefined when there is nothing more to show.
 */
export function exactAddressLines(change: PlannedChange): Array<{ heading: string; prefixes: string[] }> | undefined {
  if (change.kind !== 'security-rule') return undefined;
  const before = (change.before ?? undefined) as unknown as Record<string, unknown> | undefined;
  const after = change.after as unknown as Record<string, unknown>;
  const out: Array<{ heading: string; prefixes: string[] }> = [];
  for (const field of ADDRESS_FIELDS) {
    const was = prefixesOf(before, field);
    const now = prefixesOf(after, field);
    if (JSON.stringify(was) === JSON.stringify(now)) continue;
    const where = (rule: Record<string, unknown> | undefined) => (Array.isArray(rule?.[field.list]) && (rule?.[field.list] as unknown[]).length ? field.list : field.single);
    if (before) out.push({ heading: `${field.label} now (${where(before)}, ${was.length})`, prefixes: was });
    out.push({ heading: `${field.label} after the change (${where(after)}, ${now.length})`, prefixes: now });
  }
  // Worth a click only when the readable lines did not already show every prefix.
  return out.some((o) => o.prefixes.length > 1) ? out : undefined;
}

/** The change as card elements: readable lines, and the exact prefix lists behind a toggle. */
function changeElements(change: PlannedChange, id: string): CardElement[] {
  const mono = (line: string): CardElement => text(line, { fontType: 'Monospace', size: 'Small', spacing: 'None' });
  const elements = describeChange(change).map(mono);
  const exact = exactAddressLines(change);
  if (!exact) return elements;
  return [
    ...elements,
    {
      type: 'ActionSet',
      spacing: 'Small',
      actions: [{ type: 'Action.ToggleVisibility', title: 'Show the exact prefix lists', targetElements: [id] }],
    },
    {
      type: 'Container',
      id,
      isVisible: false,
      spacing: 'Small',
      items: exact.flatMap((e) => [text(e.heading, { size: 'Small', weight: 'Bolder', spacing: 'Small' }), ...e.prefixes.map(mono)]),
    },
  ];
}

export interface ApprovalCardOptions {
  /** The card's nonce (stored with the delivery), echoed by every button. */
  nonce: string;
  /** Settings.approvers: when empty the card says nobody can approve yet. */
  approvers: string[];
  /** First time the drift was seen (the stored finding), when known. */
  driftSince?: string;
}

/**
 * A plan in which NetGuard itself writes nothing: every open namespace already has egress policies
 * of its own, where NetGuard never writes, approved or not (its allow-most policy would widen the
 * egress of the pods those policies restrict). Its card asks a person to act, not to approve.
 */
export function onlyForAPerson(change: PlannedChange): change is KubeNetworkPolicyChange {
  return change.kind === 'kube-network-policy' && change.writes.length === 0 && change.leftToPerson.length > 0;
}

const WILL_NOT_WRITE =
  'NetGuard will not write in these namespaces, approved or not: each already has egress policies of its own, and adding NetGuard\u2019s ' +
  'allow-most policy next to them would widen the egress of the pods they restrict. Only the policies named below can close it.';

/** What the person must change, one namespace a line, naming the policies (from the plan). */
function personOnlyElements(change: KubeNetworkPolicyChange): CardElement[] {
  return [
    text('What NetGuard will not do', { weight: 'Bolder', spacing: 'Medium' }),
    text(WILL_NOT_WRITE),
    text('What a person must change', { weight: 'Bolder', spacing: 'Medium' }),
    ...change.leftToPerson.map((p) => text(`- ${p.namespace}: ${p.reason}`, { spacing: 'None' })),
    text(
      'The next sweep judges the cluster again: once these namespaces block 169.254.169.254, the finding closes by itself. Until then NetGuard asks again at each sweep; Exempt silences it for ' +
        `${EXEMPTION_DAYS} days.`,
      { isSubtle: true, size: 'Small' },
    ),
  ];
}

function approvalFacts(approval: ApprovalRecord, driftSince?: string): CardElement[] {
  const rows: Array<[string, string]> = [
    ['Control', approval.control],
    ['Cluster', lastSegment(approval.clusterId)],
    ['Drift since', formatTime(driftSince ?? approval.requestedAt)],
    ['Drift caused by', approval.changedBy !== undefined ? escapeName(approval.changedBy) : 'unknown (no event claims for this change)'],
    ['Requested', formatTime(approval.requestedAt)],
    ['Expires', formatTime(approval.expiresAt)],
  ];
  const head = [text(`Target: ${link(approval.targetId)}`), facts(rows), text('What drifted', { weight: 'Bolder', spacing: 'Medium' }), text(approval.detail)];
  if (onlyForAPerson(approval.change)) return [...head, ...personOnlyElements(approval.change)];
  return [
    ...head,
    text('The change NetGuard will make', { weight: 'Bolder', spacing: 'Medium' }),
    text(approval.change.summary),
    ...changeElements(approval.change, 'exact-change'),
    text('Why a person is needed', { weight: 'Bolder', spacing: 'Medium' }),
    // The reason can name who keeps changing the resource (flap guard): names are escaped like the fact above.
    text(escapeName(approval.reason.charAt(0).toUpperCase() + approval.reason.slice(1) + (/[.!?]$/.test(approval.reason) ? '' : '.'))),
  ];
}

/** The card asking for a decision: Approve / Reject / Exempt for 7 days (Action.Execute). */
export function buildApprovalCard(approval: ApprovalRecord, options: ApprovalCardOptions): AdaptiveCard {
  const button = (action: ApprovalAction, title: string, style?: 'positive' | 'destructive'): CardElement => {
    const data: ApprovalActionData = { approvalId: approval.id, action, nonce: options.nonce };
    return { type: 'Action.Execute', title, verb: APPROVAL_VERBS[action], data, ...(style ? { style } : {}) };
  };
  const who = options.approvers.length
    ? text(`${options.approvers.length} approver(s) configured in AKS_NETGUARD_APPROVERS may decide.`, { isSubtle: true, size: 'Small' })
    : text('Nobody can approve yet: AKS_NETGUARD_APPROVERS is empty. Add Entra object ids to it to enable these buttons.', {
        color: 'Warning',
      });
  const personOnly = onlyForAPerson(approval.change);
  // Nothing to approve when NetGuard writes nothing: the person acknowledges (recorded as a decline
  // of NetGuard's offer, so nothing is ever applied) or exempts; an Approve button would only fail.
  const actions = personOnly
    ? [button('reject', 'Acknowledge: a person will change them'), button('exempt', `Exempt for ${EXEMPTION_DAYS} days`)]
    : [button('approve', 'Approve', 'positive'), button('reject', 'Reject', 'destructive'), button('exempt', `Exempt for ${EXEMPTION_DAYS} days`)];
  const headline = personOnly
    ? `A person must act: ${approval.control} on ${escapeMarkdown(lastSegment(approval.clusterId))}`
    : `Approval needed: ${approval.control} on ${escapeMarkdown(lastSegment(approval.clusterId))}`;
  return card([
    { type: 'Container', style: personOnly ? 'warning' : 'attention', bleed: true, items: [text(headline, { size: 'Medium', weight: 'Bolder' })] },
    ...policyLine(approval.control),
    ...approvalFacts(approval, options.driftSince),
    who,
    { type: 'ActionSet', actions },
  ]);
}

export type DecisionOutcome =
  | { kind: 'applied'; detail: string }
  | { kind: 'started'; detail: string }
  | { kind: 'gone'; detail: string }
  | { kind: 'changed'; detail: string }
  | { kind: 'failed'; detail: string }
  /** Approved, but the plan holds only namespaces NetGuard never writes in: nothing to apply. */
  | { kind: 'left-to-person'; detail: string }
  | { kind: 'rejected' }
  | { kind: 'exempted'; until: string }
  | { kind: 'expired' };

/** The card after a decision: replaces the approval card for everyone; no buttons any more. */
export function buildDecidedCard(approval: ApprovalRecord, decidedBy: string, decidedAt: string, outcome: DecisionOutcome): AdaptiveCard {
  const by = `by ${decidedBy} at ${formatTime(decidedAt)}`;
  const headline: Record<DecisionOutcome['kind'], { line: string; style: 'good' | 'warning' | 'attention' | 'emphasis' }> = {
    applied: { line: `Approved ${by}: done.`, style: 'good' },
    started: { line: `Approved ${by}: applying. NetGuard posts a notice once the fix is verified.`, style: 'good' },
    gone: { line: `Approved ${by}: nothing applied, the drift is gone.`, style: 'emphasis' },
    changed: { line: `Approved ${by}: nothing applied, the drift or the fix changed since the request.`, style: 'warning' },
    failed: { line: `Approved ${by}: the fix failed.`, style: 'attention' },
    'left-to-person': { line: `Approved ${by}: nothing to apply. NetGuard does not write here; a person must change the policies named below.`, style: 'warning' },
    rejected: onlyForAPerson(approval.change)
      ? { line: `Acknowledged ${by}: NetGuard changes nothing here; a person changes the policies named below.`, style: 'emphasis' }
      : { line: `Rejected ${by}. NetGuard will not apply this change.`, style: 'emphasis' },
    exempted: { line: `Exempted for ${EXEMPTION_DAYS} days ${by}.`, style: 'emphasis' },
    expired: { line: `This request expired at ${formatTime(approval.expiresAt)}; nothing was applied.`, style: 'warning' },
  };
  const head = headline[outcome.kind];
  const more: CardElement[] = [];
  if ('detail' in outcome && outcome.detail) more.push(text(outcome.detail));
  if (outcome.kind === 'exempted') {
    more.push(text(`NetGuard leaves ${approval.control} on this target alone until ${formatTime(outcome.until)}; the finding is reported as exempt.`));
  }
  return card([
    { type: 'Container', style: head.style, bleed: true, items: [text(head.line, { size: 'Medium', weight: 'Bolder' })] },
    ...more,
    text(`${approval.control} on ${escapeMarkdown(lastSegment(approval.clusterId))}`, { weight: 'Bolder', spacing: 'Medium' }),
    ...policyLine(approval.control),
    ...approvalFacts(approval),
  ]);
}

export interface RemediationNoticeInput {
  finding: Finding;
  change: PlannedChange;
  changedBy?: string;
  at: string;
}

/** A short card for a fix NetGuard made by itself: what, where, who had changed it, how to undo. */
export function buildRemediationCard(notice: RemediationNoticeInput): AdaptiveCard {
  const { finding, change } = notice;
  return card([
    {
      type: 'Container',
      style: 'good',
      bleed: true,
      items: [text(`NetGuard fixed drift: ${finding.control} on ${escapeMarkdown(lastSegment(finding.resourceId))}`, { weight: 'Bolder' })],
    },
    ...policyLine(finding.control),
    text(`Target: ${link(finding.targetId)}`),
    facts([
      ['Cluster', lastSegment(finding.resourceId)],
      // Who made the change NetGuard undid (from the event's claims), not who fixed it.
      ['Drift caused by', notice.changedBy !== undefined ? escapeName(notice.changedBy) : 'unknown (no event claims for this change)'],
      ['Fixed by NetGuard at', formatTime(notice.at)],
    ]),
    text(change.summary),
    ...changeElements(change, 'exact-fix'),
    text(
      `To undo: tag the resource aks-netguard-exempt=${finding.control} first (otherwise NetGuard repairs it again), then revert the change in the portal.`,
      { isSubtle: true, size: 'Small' },
    ),
  ]);
}

// ---------------------------------------------------------------- daily digest

export type DigestColumn = 'compliant' | 'drift' | 'remediated' | 'waiting' | 'exempt';
export type ControlCounts = Record<DigestColumn, number>;

/** What the previous digest saw (stored after each digest) and the recent past. */
export interface DigestHistory {
  /** The counts of the previous digest, per control; absent on the first digest. */
  previous?: { at: string; counts: Partial<Record<ControlId, ControlCounts>>; openDrift: string[] };
  /** Drift per day, oldest first (the card shows the last 14). */
  days: Array<{ date: string; drift: number; remediated: number }>;
  /** Targets fixed again and again (from the audit trail), most first. */
  recurring: Array<{ control: ControlId; targetId: string; times: number }>;
}

export function countsByControl(report: RunReport, approvals: ApprovalRecord[]): Record<ControlId, ControlCounts> {
  const out = Object.fromEntries(
    CONTROL_IDS.map((c) => [c, { compliant: 0, drift: 0, remediated: 0, waiting: 0, exempt: 0 }]),
  ) as Record<ControlId, ControlCounts>;
  for (const f of report.findings) {
    const row = out[f.control];
    if (!row) continue;
    if (f.status === 'exempt') row.exempt++;
    else if (f.action === 'remediated') row.remediated++;
    else if (f.status === 'compliant') row.compliant++;
    else if (f.status === 'drift' || f.status === 'error') row.drift++;
  }
  for (const a of approvals) if (a.state === 'pending' && out[a.control]) out[a.control].waiting++;
  return out;
}

/** Open drift (not fixed by this run) as stable keys: control|target lower-cased. */
export function openDriftKeys(report: RunReport): string[] {
  return [
    ...new Set(
      report.findings.filter((f) => f.status === 'drift' && f.action !== 'remediated').map((f) => `${f.control}|${f.targetId.toLowerCase()}`),
    ),
  ].sort();
}

const BAR_MAX_PX = 180;
const DAYS_SHOWN = 14;

/** A horizontal bar chart made of ColumnSets (Chart.* elements are not part of 1.5). */
function driftChart(days: DigestHistory['days']): CardElement[] {
  const shown = days.slice(-DAYS_SHOWN);
  const max = Math.max(1, ...shown.map((d) => d.drift));
  return shown.map((d) => {
    const columns: CardElement[] = [{ type: 'Column', width: '90px', items: [text(d.date.slice(5), { size: 'Small', spacing: 'None' })] }];
    if (d.drift > 0) {
      const px = Math.max(4, Math.round((d.drift / max) * BAR_MAX_PX));
      columns.push({ type: 'Column', width: `${px}px`, style: 'attention', minHeight: '16px', items: [] });
    }
    columns.push({
      type: 'Column',
      width: 'stretch',
      items: [text(`${d.drift} drift${d.remediated ? `, ${d.remediated} fixed` : ''}`, { size: 'Small', spacing: 'None', isSubtle: true })],
    });
    // Small spacing between the rows keeps the bars apart (a styled column is padded by the renderer).
    return { type: 'ColumnSet', spacing: 'Small', columns };
  });
}

function countsTable(counts: Record<ControlId, ControlCounts>): CardElement {
  const header: DigestColumn[] = ['compliant', 'drift', 'remediated', 'waiting', 'exempt'];
  const cell = (value: string, bold = false): CardElement => ({
    type: 'TableCell',
    items: [text(value, { size: 'Small', ...(bold ? { weight: 'Bolder' as const } : {}) })],
  });
  return {
    type: 'Table',
    firstRowAsHeader: true,
    gridStyle: 'default',
    columns: [{ width: 3 }, ...header.map(() => ({ width: 1 }))],
    rows: [
      { type: 'TableRow', cells: [cell('control', true), ...header.map((h) => cell(h, true))] },
      ...CONTROL_IDS.map((c) => ({ type: 'TableRow', cells: [cell(c), ...header.map((h) => cell(String(counts[c][h])))] })),
    ],
  };
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * One line, each number in its own unit: clusters where clusters are counted, findings (one per
 * control and target) where findings are, e.g. "9 clusters judged, 4 with drift. 6 findings drifted:
 * 2 fixed, 3 waiting for approval, 1 reported only. 6 findings exempt, 0 errors."
 */
export function digestHeadline(report: RunReport): string {
  const s = report.summary;
  const driftedClusters = new Set(report.findings.filter((f) => f.status === 'drift').map((f) => f.resourceId.toLowerCase())).size;
  // A fixed drift stays a drift finding (action remediated); what is neither fixed nor waiting is reported only.
  const reported = Math.max(0, s.drift - s.remediated - s.approvalRequested);
  const drifted = s.drift
    ? `${count(s.drift, 'finding')} drifted: ${s.remediated} fixed, ${s.approvalRequested} waiting for approval${reported ? `, ${reported} reported only` : ''}.`
    : 'No finding drifted.';
  return (
    `${count(s.resources, 'cluster')} judged, ${driftedClusters} with drift. ${drifted} ` +
    `${count(s.exempt, 'finding')} exempt, ${count(s.errors, 'error')}.`
  );
}

/** The daily digest: per-control counts, what changed, who is waiting, what keeps drifting, 14 days. */
export function buildDigest(report: RunReport, history: DigestHistory, approvals: ApprovalRecord[], at = new Date().toISOString()): AdaptiveCard {
  const counts = countsByControl(report, approvals);
  const body: CardElement[] = [
    { type: 'Container', style: 'emphasis', bleed: true, items: [text(`NetGuard daily digest, ${formatTime(at)}`, { size: 'Medium', weight: 'Bolder' })] },
    text(digestHeadline(report)),
    countsTable(counts),
    text('Since the previous digest', { weight: 'Bolder', spacing: 'Medium' }),
  ];

  const open = openDriftKeys(report);
  if (!history.previous) {
    body.push(text('This is the first digest.'));
  } else {
    const before = new Set(history.previous.openDrift);
    const now = new Set(open);
    const appeared = open.filter((k) => !before.has(k));
    const resolved = history.previous.openDrift.filter((k) => !now.has(k));
    const changedControls = CONTROL_IDS.filter((c) => {
      const p = history.previous?.counts[c];
      return p && (p.drift !== counts[c].drift || p.exempt !== counts[c].exempt || p.waiting !== counts[c].waiting);
    });
    const describe = (k: string) => {
      const bar = k.indexOf('|');
      return `${k.slice(0, bar)} on ${escapeMarkdown(lastSegment(k.slice(bar + 1)))}`;
    };
    if (!appeared.length && !resolved.length && !changedControls.length) body.push(text(`No change since ${formatTime(history.previous.at)}.`));
    for (const k of appeared) body.push(text(`- new drift: ${describe(k)}`, { spacing: 'None' }));
    for (const k of resolved) body.push(text(`- no longer drifting: ${describe(k)}`, { spacing: 'None' }));
    for (const c of changedControls) {
      const p = history.previous.counts[c]!;
      const moved = (['drift', 'waiting', 'exempt'] as const).filter((k) => p[k] !== counts[c][k]).map((k) => `${k} ${p[k]} → ${counts[c][k]}`);
      body.push(text(`- ${c}: ${moved.join(', ')}`, { spacing: 'None' }));
    }
  }

  const waiting = approvals.filter((a) => a.state === 'pending').sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  body.push(text(`Approvals waiting (${waiting.length}), oldest first`, { weight: 'Bolder', spacing: 'Medium' }));
  if (!waiting.length) body.push(text('None.'));
  for (const a of waiting) {
    const undelivered = a.delivered === false ? ' (card not delivered yet: use `status` or the CLI)' : '';
    body.push(text(`- since ${formatTime(a.requestedAt)}: ${a.control} on ${link(a.targetId)} (${escapeMarkdown(lastSegment(a.clusterId))})${undelivered}`, { spacing: 'None' }));
  }

  body.push(text('Keeps drifting', { weight: 'Bolder', spacing: 'Medium' }));
  if (!history.recurring.length) body.push(text('Nothing was fixed more than once in the last 14 days.'));
  for (const r of history.recurring) body.push(text(`- ${r.control} on ${link(r.targetId)}: fixed ${r.times} times`, { spacing: 'None' }));

  body.push(text(`Drift over the last ${DAYS_SHOWN} days`, { weight: 'Bolder', spacing: 'Medium' }));
  if (!history.days.length) body.push(text('No history yet.'));
  body.push(...driftChart(history.days));
  return card(body);
}
