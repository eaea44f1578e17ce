import {
  IMDS,
  OWN_POLICY_NAME,
  effectivePolicyTypes,
  isOriginalOwnPolicy,
  judgeNamespace,
  ownPolicyObject,
  parseNetworkPolicy,
  policyAdmits,
  restoringOwnPolicyWidensNothing,
  selectorMatches,
  selectorSatisfiable,
  selectorsCoverEveryPod,
  type LabelSelector,
  type ObservedPolicy,
} from '../../shared/kube/networkPolicy';

/** A NetworkPolicy as the API server would answer it (after parsing at the edge). */
function policy(name: string, spec: Record<string, unknown>, namespace = 'shop', resourceVersion = '1'): ObservedPolicy {
  return parseNetworkPolicy({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace, resourceVersion }, spec });
}

const egressOnly = (egress: unknown[], podSelector: LabelSelector = {}) => ({ podSelector, policyTypes: ['Egress'], egress });
const denyAllEgress = (podSelector: LabelSelector = {}) => ({ podSelector, policyTypes: ['Egress'] });

describe('policyTypes defaulting', () => {
  it('absent: Ingress only, plus Egress when there are egress rules', () => {
    expect([...effectivePolicyTypes({ podSelector: {} })]).toEqual(['Ingress']);
    expect([...effectivePolicyTypes({ podSelector: {}, egress: [{}] })].sort()).toEqual(['Egress', 'Ingress']);
  });

  it('an empty egress list without policyTypes isolates nothing (the API server checks len(egress) != 0)', () => {
    expect(effectivePolicyTypes({ podSelector: {}, egress: [] }).has('Egress')).toBe(false);
    // So a namespace with only such a policy stays open.
    expect(judgeNamespace('shop', [policy('empty-egress', { podSelector: {}, egress: [] })]).open).toBe(true);
  });

  it('declared policyTypes are taken as they are', () => {
    expect([...effectivePolicyTypes({ podSelector: {}, policyTypes: ['Ingress'], egress: [{}] })]).toEqual(['Ingress']);
    // An Ingress-only policy with egress rules does not isolate egress.
    const v = judgeNamespace('shop', [policy('ingress-only', { podSelector: {}, policyTypes: ['Ingress'], egress: [{ to: [{ podSelector: {} }] }] })]);
    expect(v.open).toBe(true);
    expect(v.egressPolicies).toEqual([]);
  });
});

describe('label selectors', () => {
  it('match as Kubernetes does (NotIn and DoesNotExist match an absent key)', () => {
    expect(selectorMatches({}, {})).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'web' } }, { app: 'web', tier: 'x' })).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'web' } }, {})).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, {})).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, { app: 'x' })).toBe(false);
  });

  it('a contradictory selector selects no pod', () => {
    expect(selectorSatisfiable({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] })).toBe(false);
    expect(selectorSatisfiable({ matchExpressions: [{ key: 'app', operator: 'Exists' }, { key: 'app', operator: 'DoesNotExist' }] })).toBe(false);
    expect(selectorSatisfiable({ matchExpressions: [{ key: 'app', operator: 'In', values: ['a'] }, { key: 'app', operator: 'NotIn', values: ['a'] }] })).toBe(false);
    expect(selectorSatisfiable({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a', 'b'] }, { key: 'app', operator: 'Exists' }] })).toBe(true);
  });

  it('{} covers every pod; a non-empty selector alone does not', () => {
    expect(selectorsCoverEveryPod([{}])).toBe(true);
    expect(selectorsCoverEveryPod([{ matchLabels: { app: 'web' } }])).toBe(false);
    expect(selectorsCoverEveryPod([])).toBe(false);
    expect(selectorsCoverEveryPod([{ matchLabels: { app: 'web' } }, { matchLabels: { app: 'db' } }])).toBe(false);
  });

  it('complementary selectors together cover every pod', () => {
    expect(selectorsCoverEveryPod([{ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }])).toBe(true);
    // In [web] and NotIn [web]: NotIn also takes the pods without the label.
    expect(selectorsCoverEveryPod([{ matchLabels: { app: 'web' } }, { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }])).toBe(true);
    // But In [web] and NotIn [web, db] leave app=db uncovered.
    expect(selectorsCoverEveryPod([{ matchLabels: { app: 'web' } }, { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web', 'db'] }] }])).toBe(false);
  });
});

describe('egress rules and the IMDS address', () => {
  it('a rule without to or ports admits everything', () => {
    expect(policyAdmits(policy('allow-all', egressOnly([{}])), IMDS)).toBe(true);
    expect(policyAdmits(policy('allow-all', egressOnly([{ to: [], ports: [] }])), IMDS)).toBe(true);
  });

  it('ipBlock minus except', () => {
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }])))).toBe(true);
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }] }])))).toBe(false);
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } }] }])))).toBe(false);
    // An except that misses the address by one leaves it admitted.
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.253/32'] } }] }])))).toBe(true);
    // Another peer of the same rule may still admit it.
    expect(
      policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }, { ipBlock: { cidr: '169.254.0.0/16' } }] }]))),
    ).toBe(true);
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ ipBlock: { cidr: '::/0' } }] }])))).toBe(false);
  });

  it('namespace and pod selector peers never match the address', () => {
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ namespaceSelector: {} }] }])))).toBe(false);
    expect(policyAdmits(policy('p', egressOnly([{ to: [{ podSelector: {} }] }])))).toBe(false);
  });

  it('ports: protocol defaults to TCP, endPort ranges, named ports never match', () => {
    const to = [{ ipBlock: { cidr: '169.254.169.254/32' } }];
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ port: 80 }] }])))).toBe(true);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ protocol: 'UDP', port: 80 }] }])))).toBe(false);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ protocol: 'TCP' }] }])))).toBe(true);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ port: 443 }] }])))).toBe(false);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ port: 1, endPort: 1024 }] }])))).toBe(true);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ port: 81, endPort: 1024 }] }])))).toBe(false);
    expect(policyAdmits(policy('p', egressOnly([{ to, ports: [{ port: 'http' }] }])))).toBe(false);
  });
});

describe('a namespace', () => {
  it('with no policy is open: nothing isolates its pods', () => {
    const v = judgeNamespace('shop', []);
    expect(v).toMatchObject({ open: true, unisolatedPods: true, admittedBy: [], foreignEgressPolicies: [] });
  });

  it('deny-all egress for every pod closes it; for some pods only, it stays open', () => {
    expect(judgeNamespace('shop', [policy('deny', denyAllEgress())]).open).toBe(false);
    const partial = judgeNamespace('shop', [policy('deny-web', denyAllEgress({ matchLabels: { app: 'web' } }))]);
    expect(partial).toMatchObject({ open: true, unisolatedPods: true, admittedBy: [] });
  });

  it('the union of all policies selecting a pod: one admitting policy opens it', () => {
    const v = judgeNamespace('shop', [
      policy('deny', denyAllEgress()),
      policy('web-out', egressOnly([{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ port: 80 }] }], { matchLabels: { app: 'web' } })),
    ]);
    expect(v).toMatchObject({ open: true, unisolatedPods: false, admittedBy: ['web-out'], foreignEgressPolicies: ['deny', 'web-out'] });
  });

  it('an admitting policy that selects no pod does not open it', () => {
    const none = { matchLabels: { app: 'a' }, matchExpressions: [{ key: 'app', operator: 'DoesNotExist' as const }] };
    expect(judgeNamespace('shop', [policy('deny', denyAllEgress()), policy('dead', egressOnly([{}], none))]).open).toBe(false);
  });

  it('only policies of the namespace count', () => {
    expect(judgeNamespace('shop', [policy('deny', denyAllEgress(), 'other')]).open).toBe(true);
  });

  it('an unreadable policy counts as an egress policy that admits the address', () => {
    const broken = parseNetworkPolicy({ metadata: { name: 'weird', namespace: 'shop' }, spec: { podSelector: {}, egress: 'all' } });
    const v = judgeNamespace('shop', [policy('deny', denyAllEgress()), broken]);
    expect(v).toMatchObject({ open: true, admittedBy: ['weird'] });
  });

  it("NetGuard's own policy closes it, and is not a foreign egress policy", () => {
    const own = parseNetworkPolicy(ownPolicyObject('shop'));
    expect(isOriginalOwnPolicy(own)).toBe(true);
    const v = judgeNamespace('shop', [own]);
    expect(v).toMatchObject({ open: false, egressPolicies: [OWN_POLICY_NAME], foreignEgressPolicies: [] });
  });
});

describe('putting NetGuard’s own policy back', () => {
  const ownWith = (mutate: (spec: any) => void) => {
    const o = ownPolicyObject('shop', '7') as any;
    mutate(o.spec);
    return parseNetworkPolicy(o);
  };

  it('is allowed when a person widened it (the except removed)', () => {
    const p = ownWith((s) => delete s.egress[0].to[0].ipBlock.except);
    expect(judgeNamespace('shop', [p]).open).toBe(true);
    expect(restoringOwnPolicyWidensNothing(p)).toBe(true);
  });

  it('is refused when a person narrowed it (a destination taken out)', () => {
    const p = ownWith((s) => (s.egress[0].to = [{ ipBlock: { cidr: '10.0.0.0/8' } }, { namespaceSelector: {} }]));
    expect(restoringOwnPolicyWidensNothing(p)).toBe(false);
    const q = ownWith((s) => (s.egress[0].ports = [{ port: 443 }, { protocol: 'UDP', port: 53 }]));
    expect(restoringOwnPolicyWidensNothing(q)).toBe(false);
  });

  it('is refused when it now also isolates ingress (the original would lift that)', () => {
    const p = ownWith((s) => (s.policyTypes = ['Egress', 'Ingress']));
    expect(restoringOwnPolicyWidensNothing(p)).toBe(false);
  });

  it('is allowed when it no longer restricts egress of any pod', () => {
    expect(restoringOwnPolicyWidensNothing(ownWith((s) => (s.podSelector = { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'a', operator: 'DoesNotExist' }] })))).toBe(true);
    expect(restoringOwnPolicyWidensNothing(ownWith((s) => (s.egress = [{}])))).toBe(true);
  });
});

describe('selector reasoning agrees with brute force', () => {
  // Over keys {a, b} and the values they mention plus one fresh value, enumerating every label set
  // is exact: a value no selector mentions behaves like any other such value.
  const keys = ['a', 'b'];
  const values = ['x', 'y', 'fresh'];
  const labelSets: Array<Record<string, string>> = [];
  for (const va of [undefined, ...values]) {
    for (const vb of [undefined, ...values]) {
      const l: Record<string, string> = {};
      if (va) l.a = va;
      if (vb) l.b = vb;
      labelSets.push(l);
    }
  }
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor(seed / 65536) % n;
  };
  const ops = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
  const randomSelector = (): LabelSelector => {
    const n = rnd(3);
    const matchExpressions = Array.from({ length: n }, () => {
      const operator = ops[rnd(4)];
      const vals = ['x', 'y'].filter(() => rnd(2) === 1);
      return { key: keys[rnd(2)], operator, values: operator === 'In' || operator === 'NotIn' ? (vals.length ? vals : ['x']) : undefined };
    });
    return rnd(4) === 0 ? { matchLabels: { [keys[rnd(2)]]: ['x', 'y'][rnd(2)] }, matchExpressions } : { matchExpressions };
  };

  it('for satisfiability and coverage of random selector sets', () => {
    for (let i = 0; i < 400; i++) {
      const selectors = Array.from({ length: 1 + rnd(4) }, randomSelector);
      for (const s of selectors) expect(selectorSatisfiable(s)).toBe(labelSets.some((l) => selectorMatches(s, l)));
      const covered = labelSets.every((l) => selectors.some((s) => selectorMatches(s, l)));
      expect(selectorsCoverEveryPod(selectors)).toBe(covered);
    }
  });
});
