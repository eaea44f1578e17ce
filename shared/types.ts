// Public vocabulary of NetGuard: the JSON contract of DESIGN.md ("--json") is built from these types.

export const CONTROL_IDS = [
  'node-ssh-deny',
  'api-authorized-ranges',
  'http-application-routing',
  'instance-metadata',
  'network-policy',
  'egress-lockdown',
  'service-mesh',
] as const;
export type ControlId = (typeof CONTROL_IDS)[number];

export const MODES = ['report', 'approve', 'auto'] as const;
export type Mode = (typeof MODES)[number];

export type Severity = 'enforced' | 'advisory';
export type FindingStatus = 'compliant' | 'drift' | 'exempt' | 'error';
export type FindingAction = 'none' | 'remediated' | 'approval-requested' | 'reported' | 'skipped';

/** One line of the `--json` output: one control judged on one cluster (and, for node-ssh-deny, one NSG). */
export interface Finding {
  control: ControlId;
  /** The managed cluster. */
  resourceId: string;
  /** What is (or would be) changed: the NSG or node subnet for node-ssh-deny, else the cluster. */
  targetId: string;
  status: FindingStatus;
  action: FindingAction;
  /** One sentence a person can act on. */
  detail: string;
}

export interface RunSummary {
  resources: number;
  drift: number;
  remediated: number;
  approvalRequested: number;
  exempt: number;
  errors: number;
}

export interface RunReport {
  findings: Finding[];
  summary: RunSummary;
}

export function summarize(findings: Finding[], resources: number): RunSummary {
  const count = (pred: (f: Finding) => boolean) => findings.filter(pred).length;
  return {
    resources,
    drift: count((f) => f.status === 'drift'),
    remediated: count((f) => f.action === 'remediated'),
    approvalRequested: count((f) => f.action === 'approval-requested'),
    exempt: count((f) => f.status === 'exempt'),
    errors: count((f) => f.status === 'error'),
  };
}
