// The Kubernetes client and access path against the stand-ins: the ARM sandbox answers
// listClusterUserCredential with a kubeconfig naming the Kubernetes sandbox.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { KubeAccessError, KUBE_DATA_ACTIONS, observeKube, openKubeClient } from '../../shared/kube/access';
import { KubeClient, KubeError } from '../../shared/kube/client';
import { readKubeconfig } from '../../shared/kube/kubeconfig';
import { OWN_POLICY_NAME, isUnreadable, ownPolicyObject } from '../../shared/kube/networkPolicy';
import { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture } from '../../testkit/fleet';
import { KubeSandbox } from '../../testkit/kubeServer';

const SUB = '11111111-2222-3333-4444-555555555555';

let arm: ArmSandbox;
let kube: KubeSandbox;
let gateway: ArmGateway;

function cluster(name: string, properties: Partial<ArmManagedCluster['properties']> = {}): ArmManagedCluster {
  const c = clusterFromFixture({
    subscriptionId: SUB,
    resourceGroup: 'rg',
    name,
    properties: { aadProfile: { managed: true, enableAzureRBAC: true }, networkProfile: { networkPlugin: 'azure', networkPolicy: 'cilium' }, ...properties },
  });
  return arm.put(c);
}

const fast = { timeoutMs: 2000, retry: { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 20 } };

beforeEach(async () => {
  arm = await ArmSandbox.start({ subscriptions: [SUB] });
  kube = await KubeSandbox.start();
  gateway = new ArmGateway({ endpoint: arm.endpoint, pollIntervalMs: 5, retryOptions: { maxRetries: 0 } });
});

afterEach(async () => {
  await kube.stop();
  await arm.stop();
});

describe('reading a cluster', () => {
  it('takes the API server from listClusterUserCredential, sends the sandbox token, pages through both lists', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, kube.url);
    for (const ns of ['default', 'shop', 'billing', 'kube-system']) kube.addNamespace(ns);
    kube.putPolicy('shop', { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Egress'] } });
    kube.putPolicy('billing', { metadata: { name: 'a' }, spec: { podSelector: {}, egress: [{}] } });
    kube.putPolicy('billing', { metadata: { name: 'b' }, spec: { podSelector: { matchLabels: { app: 'x' } } } });

    const { client, observed } = await observeKube(gateway, c, { ...fast, pageSize: 2 });
    client.close();

    expect(observed.namespaces.map((n) => n.name).sort()).toEqual(['billing', 'default', 'kube-system', 'shop']);
    expect(observed.policies.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual(['billing/a', 'billing/b', 'shop/deny']);
    // The API server's defaulting shows through: egress rules without policyTypes → Ingress + Egress.
    const a = observed.policies.find((p) => p.name === 'a')!;
    expect(!isUnreadable(a) && a.spec.policyTypes).toEqual(['Ingress', 'Egress']);

    const credential = arm.findRequests({ method: 'POST', path: /listClusterUserCredential$/ });
    expect(credential).toHaveLength(1);
    const nsPages = kube.requests.filter((r) => r.path === '/api/v1/namespaces');
    expect(nsPages.map((r) => r.query.limit)).toEqual(['2', '2']);
    expect(nsPages[1].query.continue).toBeTruthy();
    expect(kube.requests.filter((r) => r.path === '/apis/networking.k8s.io/v1/networkpolicies')).toHaveLength(2);
    expect(new Set(kube.requests.map((r) => r.headers.authorization))).toEqual(new Set(['Bearer netguard-sandbox-token']));
    // listClusterUserCredential reads; it is no write of NetGuard's.
    expect(gateway.calls).toMatchObject({ reads: 1, writes: 0 });
  });

  it('a cluster with local accounts only is refused before any call, saying how to grant access', async () => {
    const c = cluster('local', { aadProfile: undefined });
    delete (c.properties as Record<string, unknown>).aadProfile;
    const err = await openKubeClient(gateway, c, fast).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeAccessError);
    expect(err).toMatchObject({ problem: 'local-accounts' });
    expect((err as Error).message).toMatch(/--enable-azure-rbac/);
    expect((err as Error).message).toContain(KUBE_DATA_ACTIONS[2]);
    expect(arm.requests).toHaveLength(0);
    expect(kube.requests).toHaveLength(0);
  });

  it('403 from the API server names the data actions to grant', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, kube.url);
    kube.forbid = () => true;
    const err = await observeKube(gateway, c, fast).catch((e: unknown) => e);
    expect(err).toMatchObject({ problem: 'not-authorized' });
    expect((err as Error).message).toMatch(/refused NetGuard \(403\)/);
    for (const action of KUBE_DATA_ACTIONS) expect((err as Error).message).toContain(action);
  });

  it('a wrong token is 401 and said so', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, kube.url);
    kube.token = 'someone-else';
    await expect(observeKube(gateway, c, fast)).rejects.toMatchObject({ problem: 'not-authorized', message: expect.stringMatching(/\(401\)/) });
  });

  it('an API server with no network path: unreachable, and for a private cluster the VNet integration it needs', async () => {
    const c = cluster('private', { apiServerAccessProfile: { enablePrivateCluster: true } });
    arm.setKubeApiServer(c.id, kube.url);
    await kube.stop();
    const err = await observeKube(gateway, c, fast).catch((e: unknown) => e);
    expect(err).toMatchObject({ problem: 'unreachable', transient: true });
    expect((err as Error).message).toMatch(/private cluster/);
    expect((err as Error).message).toMatch(/VNet integration/);
  });

  it('a request that never answers ends with a timeout error', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, kube.url);
    kube.failNext({ pathPattern: /namespaces$/, hang: true, times: 10 });
    const err = await observeKube(gateway, c, { timeoutMs: 100, retry: { maxRetries: 1, baseDelayMs: 1 } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ problem: 'unreachable' });
    expect((err as Error).message).toMatch(/did not answer GET \/api\/v1\/namespaces within/);
  });

  it('429 and 503 are retried, with or without Retry-After', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, kube.url);
    kube.addNamespace('default');
    kube.failNext({ pathPattern: /namespaces$/, status: 429 });
    kube.failNext({ pathPattern: /namespaces$/, status: 503, headers: { 'retry-after': '0' } });
    const { client, observed } = await observeKube(gateway, c, fast);
    client.close();
    expect(observed.namespaces.map((n) => n.name)).toEqual(['default']);
    expect(kube.requests.filter((r) => r.path === '/api/v1/namespaces').map((r) => r.status)).toEqual([429, 503, 200]);
  });

  it('refuses plain http to an API server that is not on loopback, before sending anything', async () => {
    const c = cluster('aks1');
    arm.setKubeApiServer(c.id, 'http://10.1.2.3:8080');
    await expect(openKubeClient(gateway, c, fast)).rejects.toMatchObject({ problem: 'refused-config' });
    expect(() => new KubeClient({ server: 'http://127.0.0.1:1', token: 'real' })).toThrow(/never sends a real token unencrypted/);
  });
});

describe('writing NetworkPolicies', () => {
  it('create is 201 once, then 409; replace needs the current resourceVersion', async () => {
    kube.addNamespace('shop');
    const client = new KubeClient({ server: kube.url, token: kube.token, plainHttpAllowed: true, ...fast });
    try {
      const created = await client.createNetworkPolicy('shop', ownPolicyObject('shop'));
      expect(created.name).toBe(OWN_POLICY_NAME);
      const rv = (created as { resourceVersion?: string }).resourceVersion!;
      await expect(client.createNetworkPolicy('shop', ownPolicyObject('shop'))).rejects.toMatchObject({ kind: 'conflict', status: 409 });

      // Someone edits it meanwhile: a replace with the old resourceVersion is refused.
      kube.putPolicy('shop', { metadata: { name: OWN_POLICY_NAME }, spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{}] } });
      const err = await client.replaceNetworkPolicy('shop', OWN_POLICY_NAME, ownPolicyObject('shop', rv)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeError);
      expect(err).toMatchObject({ kind: 'conflict' });

      const now = (await client.getNetworkPolicy('shop', OWN_POLICY_NAME))!;
      const replaced = await client.replaceNetworkPolicy('shop', OWN_POLICY_NAME, ownPolicyObject('shop', (now as { resourceVersion?: string }).resourceVersion));
      expect(isUnreadable(replaced) ? undefined : replaced.spec.egress).toEqual((ownPolicyObject('shop').spec as { egress: unknown }).egress);
      expect(await client.getNetworkPolicy('shop', 'absent')).toBeUndefined();
      expect(kube.writes().map((w) => `${w.method} ${w.status}`)).toEqual(['POST 201', 'POST 409', 'PUT 409', 'PUT 200']);
    } finally {
      client.close();
    }
  });
});

describe('kubeconfig', () => {
  it('reads the server and CA of the current context from AKS-style YAML', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const text = [
      'apiVersion: v1',
      'clusters:',
      '- cluster:',
      `    certificate-authority-data: ${Buffer.from(pem).toString('base64')}`,
      '    server: https://other.hcp.eastus.azmk8s.io:443',
      '  name: other',
      '- cluster:',
      `    certificate-authority-data: ${Buffer.from(pem).toString('base64')}`,
      '    server: "https://aks1-dns-12.hcp.eastus.azmk8s.io:443"',
      '  name: aks1',
      'contexts:',
      '- context:',
      '    cluster: aks1',
      '    user: clusterUser_rg_aks1',
      '  name: aks1',
      'current-context: aks1',
      'kind: Config',
      'preferences: {}',
      'users:',
      '- name: clusterUser_rg_aks1',
      '  user:',
      '    exec:',
      '      args:',
      '      - get-token',
      '      command: kubelogin',
    ].join('\n');
    expect(readKubeconfig(text)).toEqual({ name: 'aks1', server: 'https://aks1-dns-12.hcp.eastus.azmk8s.io:443', caPem: pem, insecureSkipTlsVerify: false });
  });

  it('reads JSON too, and refuses a kubeconfig with no server', () => {
    expect(readKubeconfig(JSON.stringify({ clusters: [{ name: 'c', cluster: { server: 'https://x:443' } }] })).server).toBe('https://x:443');
    expect(() => readKubeconfig('apiVersion: v1\nclusters: []\n')).toThrow(/names no cluster/);
  });
});

describe('https with the kubeconfig CA', () => {
  // A self-signed certificate for 127.0.0.1, made with openssl for this run only.
  function selfSigned(): { key: string; cert: string } | undefined {
    const dir = mkdtempSync(path.join(tmpdir(), 'kube-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=kube-sandbox',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'ignore' });
      return { key: readFileSync(`${dir}/key.pem`, 'utf8'), cert: readFileSync(`${dir}/cert.pem`, 'utf8') };
    } catch {
      return undefined;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('trusts the API server the kubeconfig CA vouches for, and no other', async () => {
    const tls = selfSigned();
    if (!tls) throw new Error('openssl is needed to make a test certificate');
    const secure = await KubeSandbox.start({ tls });
    try {
      secure.addNamespace('default');
      const c = cluster('aks-tls');
      arm.setKubeApiServer(c.id, secure.url, tls.cert);
      const { client, observed } = await observeKube(gateway, c, fast);
      client.close();
      expect(secure.url).toMatch(/^https:/);
      expect(observed.namespaces.map((n) => n.name)).toEqual(['default']);

      // Without the CA in the kubeconfig the same server is not trusted.
      arm.setKubeApiServer(c.id, secure.url);
      const err = await observeKube(gateway, c, { ...fast, retry: { maxRetries: 0 } }).catch((e: unknown) => e);
      expect(err).toMatchObject({ problem: 'unreachable' });
      expect((err as Error).message).toMatch(/certificate/);
    } finally {
      await secure.stop();
    }
  });
});
