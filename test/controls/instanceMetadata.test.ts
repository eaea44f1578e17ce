import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { instanceMetadata, needsKubernetesObjects, type InstanceMetadataObservation } from '../../shared/controls/instanceMetadata';
import type { KubeNetworkPolicyChange, NoPlan } from '../../shared/controls/types';
import { KubeAccessError, type KubeObservation } from '../../shared/kube/access';
import { OWN_POLICY_NAME, judgeNamespace, ownPolicyObject, parseNetworkPolicy, type ObservedPolicy } from '../../shared/kube/networkPolicy';
import { clusterFromFixture } from '../../testkit/fleet';

function cluster(networkProfile: Record<string, unknown> = { networkPlugin: 'azure', networkPolicy: 'calico' }): ArmManagedCluster {
  return clusterFromFixture({
    subscriptionId: '11111111-2222-3333-4444-555555555555',
    resourceGroup: 'rg',
    name: 'aks1',
    properties: { aadProfile: { managed: true, enableAzureRBAC: true }, networkProfile },
  });
}

function policy(namespace: string, name: string, spec: Record<string, unknown>, resourceVersion = '5'): ObservedPolicy {
  return parseNetworkPolicy({ metadata: { name, namespace, resourceVersion }, spec });
}

function kubeOf(namespaces: string[], policies: ObservedPolicy[]): KubeObservation {
  return { namespaces: namespaces.map((name) => ({ name, labels: {}, phase: 'Active' })), policies };
}

function observe(kube: KubeObservation | { error: Error } | undefined, c = cluster(), excludedNamespaces?: string[]): InstanceMetadataObservation {
  return { cluster: c, kube, excludedNamespaces };
}

function judge(o: InstanceMetadataObservation) {
  const judgements = instanceMetadata.evaluate(o);
  expect(judgements).toHaveLength(1);
  return judgements[0];
}

function planOf(o: InstanceMetadataObservation): KubeNetworkPolicyChange | NoPlan {
  return instanceMetadata.plan(judge(o), o);
}

function asChange(p: KubeNetworkPolicyChange | NoPlan): KubeNetworkPolicyChange {
  if (p.kind !== 'kube-network-policy') throw new Error(`expected NetworkPolicy writes, got ${JSON.stringify(p)}`);
  return p;
}

/** What the API server holds after the plan's writes, as a second sweep would read it. */
function applied(kube: KubeObservation, change: KubeNetworkPolicyChange): KubeObservation {
  let policies = [...kube.policies];
  for (const w of change.writes) {
    policies = policies.filter((p) => !(p.namespace === w.namespace && p.name === w.name));
    policies.push(parseNetworkPolicy({ ...w.after, metadata: { ...(w.after.metadata as object), resourceVersion: '99' } }));
  }
  return { ...kube, policies };
}

const allowAll = { podSelector: {}, policyTypes: ['Egress'], egress: [{}] };
const denyAll = { podSelector: {}, policyTypes: ['Egress'] };

describe('instance-metadata', () => {
  it('is an enforced control whose default mode is approve', () => {
    expect(instanceMetadata).toMatchObject({ id: 'instance-metadata', severity: 'enforced', defaultMode: 'approve' });
  });

  it('is compliant at once with podLinkLocalAccess None, without reading Kubernetes', () => {
    const c = cluster({ networkPlugin: 'azure', podLinkLocalAccess: 'None' });
    expect(needsKubernetesObjects(c)).toBe(false);
    expect(judge(observe(undefined, c))).toMatchObject({ compliant: true, targetId: c.id, clusterId: c.id });
  });

  it('without a network policy engine: drift that only a person can fix, pointing at network-policy', () => {
    const c = cluster({ networkPlugin: 'kubenet' });
    expect(needsKubernetesObjects(c)).toBe(false);
    const j = judge(observe(undefined, c));
    expect(j.compliant).toBe(false);
    expect(j.detail).toMatch(/network-policy/);
    expect(planOf(observe(undefined, c))).toMatchObject({ kind: 'none' });
  });

  it('an access error becomes the error of the judgement (the engine makes it an error finding)', () => {
    const err = new KubeAccessError('not-authorized', 'The API server of aks1 refused NetGuard (403): grant …');
    expect(() => instanceMetadata.evaluate(observe({ error: err }))).toThrow(err);
    expect(() => instanceMetadata.evaluate(observe(undefined))).toThrow(/were not read/);
  });

  it('judges every namespace but the excluded ones, and fixes only those without egress policies', () => {
    const kube = kubeOf(
      ['default', 'shop', 'billing', 'web', 'kube-system', 'kube-public', 'kube-node-lease'],
      [
        policy('shop', 'allow-out', allowAll),
        policy('shop', 'deny', denyAll),
        policy('billing', 'deny', denyAll),
        parseNetworkPolicy(ownPolicyObject('web', '3')),
        // Ingress-only policies isolate no egress: default counts as having no egress policy.
        policy('default', 'ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
      ],
    );
    const o = observe(kube);
    const j = judge(o);
    expect(j.compliant).toBe(false);
    expect(j.detail).toMatch(/Pods in 2 namespace\(s\) of aks1/);
    expect(j.detail).toContain('default (no egress policy)');
    expect(j.detail).toContain('shop (admitted by allow-out)');
    expect(j.detail).not.toMatch(/kube-system|billing|web/);

    const change = asChange(planOf(o));
    expect(change.writes).toEqual([{ namespace: 'default', name: OWN_POLICY_NAME, method: 'create', after: ownPolicyObject('default') }]);
    expect(change.leftToPerson).toEqual([{ namespace: 'shop', reason: expect.stringContaining('allow-out') }]);
    expect(change.needsPerson).toBe(true);
    expect(change.summary).toMatch(/Create the NetworkPolicy aks-netguard-deny-instance-metadata .* in default\./);
    expect(change.summary).toMatch(/Leave to a person — shop: the egress policies allow-out admit 169\.254\.169\.254:80/);

    // After the write, default is closed; shop still needs its person, and nothing is written twice.
    const again = observe(applied(kube, change));
    expect(judge(again).detail).not.toContain('default');
    const second = asChange(planOf(again));
    expect(second.writes).toEqual([]);
    expect(second.leftToPerson.map((p) => p.namespace)).toEqual(['shop']);
  });

  it('is compliant when every judged namespace is closed, and plans nothing', () => {
    const kube = kubeOf(['a', 'b', 'kube-system'], [policy('a', 'deny', denyAll), parseNetworkPolicy(ownPolicyObject('b'))]);
    const o = observe(kube);
    expect(judge(o).compliant).toBe(true);
  });

  it('AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES replaces the default list', () => {
    const kube = kubeOf(['kube-system', 'tools'], []);
    expect(judge(observe(kube, cluster(), ['tools'])).detail).toContain('kube-system (no egress policy)');
    expect(judge(observe(kube, cluster(), ['tools'])).detail).not.toContain('tools');
  });

  it('a namespace being deleted is not judged', () => {
    const kube: KubeObservation = { namespaces: [{ name: 'old', labels: {}, phase: 'Terminating' }], policies: [] };
    expect(judge(observe(kube)).compliant).toBe(true);
  });

  it('names the first ten open namespaces, then a count', () => {
    const names = Array.from({ length: 13 }, (_, i) => `ns${String(i).padStart(2, '0')}`);
    const o = observe(kubeOf(names, []));
    const j = judge(o);
    expect(j.detail).toContain('ns09 (no egress policy)');
    expect(j.detail).not.toContain('ns10');
    expect(j.detail).toMatch(/and 3 more\.$/);
    expect(asChange(planOf(o)).writes).toHaveLength(13);
  });

  it("puts NetGuard's own policy back with its resourceVersion when it was widened", () => {
    const widened = ownPolicyObject('api', '41') as any;
    delete widened.spec.egress[0].to[0].ipBlock.except;
    const o = observe(kubeOf(['api'], [parseNetworkPolicy(widened)]));
    expect(judge(o).detail).toContain(`api (admitted by ${OWN_POLICY_NAME})`);
    const change = asChange(planOf(o));
    expect(change.needsPerson).toBe(false);
    expect(change.writes).toEqual([
      { namespace: 'api', name: OWN_POLICY_NAME, method: 'replace', resourceVersion: '41', before: expect.anything(), after: ownPolicyObject('api', '41') },
    ]);
  });

  it("leaves NetGuard's own policy to a person when putting it back would widen something", () => {
    const changed = ownPolicyObject('api', '41') as any;
    delete changed.spec.egress[0].to[0].ipBlock.except; // admits IMDS again …
    changed.spec.policyTypes = ['Egress', 'Ingress']; // … and now isolates ingress, which the original would lift
    const change = asChange(planOf(observe(kubeOf(['api'], [parseNetworkPolicy(changed)]))));
    expect(change.writes).toEqual([]);
    expect(change.leftToPerson).toEqual([{ namespace: 'api', reason: expect.stringMatching(/was changed, and putting it back would widen/) }]);
  });

  it('a namespace whose egress policies cover only some pods goes to a person too (an allow-most policy would widen the others)', () => {
    const o = observe(kubeOf(['shop'], [policy('shop', 'web-only', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'] })]));
    expect(judge(o).detail).toContain('shop (pods no egress policy selects)');
    const change = asChange(planOf(o));
    expect(change.writes).toEqual([]);
    expect(change.leftToPerson[0].reason).toMatch(/web-only/);
  });

  it('every write it plans is a pure restriction: the namespace had no egress policy of anyone else', () => {
    const kube = kubeOf(
      ['a', 'b', 'c', 'd'],
      [policy('b', 'x', allowAll), policy('c', 'in', { podSelector: {}, ingress: [{}] }), policy('d', 'narrow', { podSelector: { matchLabels: { k: 'v' } }, egress: [{ ports: [{ port: 443 }] }] })],
    );
    const change = asChange(planOf(observe(kube)));
    for (const w of change.writes) {
      expect(judgeNamespace(w.namespace, kube.policies).foreignEgressPolicies).toEqual([]);
    }
    expect(change.writes.map((w) => w.namespace)).toEqual(['a', 'c']);
    expect(change.leftToPerson.map((p) => p.namespace)).toEqual(['b', 'd']);
  });
});
