// `aks-netguard demo`, run as a user runs it (through runCli): the first sweep's JSON on stdout, the
// narration on stderr. Judged by what the demo shows about its fleet — the instance-metadata clusters
// in particular — and by its second sweep writing nothing, to ARM or to Kubernetes.
import { runCli } from '../../shared/cli/main';
import type { Finding, RunReport } from '../../shared/types';

let code: number;
let report: RunReport;
let narration = '';

beforeAll(async () => {
  let stdout = '';
  // No AKS_NETGUARD_* from the user's environment: the demo points everything at its own sandbox.
  code = await runCli(['demo', '--json'], { stdout: (t) => (stdout += t), stderr: (t) => (narration += t), env: {} });
  report = JSON.parse(stdout) as RunReport;
}, 120_000);

function imds(cluster: string): Finding {
  const found = report.findings.filter((f) => f.control === 'instance-metadata' && f.resourceId.endsWith(`/managedClusters/${cluster}`));
  expect(found).toHaveLength(1);
  return found[0];
}

test('the demo completes and its second sweep writes nothing, to ARM or to Kubernetes', () => {
  expect(code).toBe(0);
  expect(narration).toMatch(/Sweep 2: .*\n(?:.*\n)*? {2}0 remediated, 0 ARM writes, 0 Kubernetes writes, \d+ approval\(s\) still waiting/);
});

test('compliant by podLinkLocalAccess None: judged without any Kubernetes call', () => {
  expect(imds('aks-compliant')).toMatchObject({ status: 'compliant', action: 'none', detail: expect.stringMatching(/podLinkLocalAccess None/) });
  expect(narration).not.toMatch(/Reading the namespaces and NetworkPolicies of aks-compliant/);
});

test('no network policy engine: reported, pointing at network-policy', () => {
  expect(imds('aks-imds-no-policy-engine')).toMatchObject({ status: 'drift', action: 'reported', detail: expect.stringMatching(/no network policy engine.*\(see network-policy\)/) });
  const np = report.findings.find((f) => f.control === 'network-policy' && f.resourceId.endsWith('/aks-imds-no-policy-engine'));
  expect(np?.status).toBe('drift');
});

test('a namespace with no egress policy: NetGuard’s policy, waiting for approval in the default mode', () => {
  const f = imds('aks-imds-open-namespace');
  expect(f).toMatchObject({ status: 'drift', action: 'approval-requested' });
  expect(f.detail).toMatch(/storefront \(no egress policy\)/);
  expect(f.detail).toMatch(/Create the NetworkPolicy aks-netguard-deny-instance-metadata .* in storefront\./);
  expect(f.detail).not.toMatch(/kube-system/);
});

test('a namespace whose own egress policy admits IMDS: left to a person, the policy named', () => {
  const f = imds('aks-imds-admitted');
  expect(f.status).toBe('drift');
  expect(f.action).not.toBe('remediated');
  expect(f.detail).toMatch(/payments: the egress policies allow-egress-anywhere admit 169\.254\.169\.254:80/);
  // default has a deny-all egress policy: closed, so not named.
  expect(f.detail).not.toMatch(/default \(/);
});

test('a cluster NetGuard cannot get into: an error that says how to grant access', () => {
  expect(imds('aks-imds-local-accounts')).toMatchObject({
    status: 'error',
    detail: expect.stringMatching(/local Kubernetes accounts only.*enable Azure RBAC for Kubernetes authorization/),
  });
});

test('the narration shows each case', () => {
  for (const name of ['aks-imds-no-policy-engine', 'aks-imds-open-namespace', 'aks-imds-admitted', 'aks-imds-local-accounts']) {
    expect(narration).toMatch(new RegExp(`\\n {2}${name}: (drift|error), `));
  }
  expect(narration).toMatch(/compliant \(podLinkLocalAccess None, no Kubernetes call needed\): aks-compliant/);
  // Only the request that holds nothing NetGuard writes is handed to a person as such.
  expect(narration).toMatch(/\n {2}aks-imds-admitted: drift, approval-requested\.\n {4}.*\n {4}Nothing here for NetGuard to write .* change the policies in payments, with Acknowledge and Exempt, no Approve\./);
  expect(narration.match(/Nothing here for NetGuard to write/g)).toHaveLength(1);
});
