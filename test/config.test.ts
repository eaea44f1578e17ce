import { CONTROL_IDS } from '../shared/types';
import { ConfigError, DEFAULT_ARM_ENDPOINT, SETTING_NAMES, loadSettings, modeSettingName, parseCidrList } from '../shared/config';

/** The ConfigError loadSettings throws for this environment (fails the test if it does not throw one). */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadSettings(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`loadSettings accepted ${JSON.stringify(env)}`);
}

describe('loadSettings', () => {
  it('has the documented defaults for an empty environment', () => {
    const s = loadSettings({});
    expect(s.armEndpoint).toBe('https://management.azure.com');
    expect(DEFAULT_ARM_ENDPOINT).toBe('https://management.azure.com');
    expect(s.subscriptions).toBeUndefined();
    expect(s.mode).toBeUndefined();
    expect(s.controlModes).toEqual({});
    expect(s.authorizedIpRanges).toBeUndefined();
    expect(s.principalId).toBeUndefined();
    expect(s.maxWritesPerRun).toBe(20);
    expect(s.approvers).toEqual([]);
    expect(s.bot).toEqual({ appId: undefined, tenantId: undefined, appType: undefined, appPassword: undefined });
    expect(s.storageConnection).toBeUndefined();
  });

  it('treats blank values as unset', () => {
    const s = loadSettings({ AKS_NETGUARD_MODE: '  ', AKS_NETGUARD_MAX_WRITES_PER_RUN: '', AKS_NETGUARD_SUBSCRIPTIONS: ' , ', AzureWebJobsStorage: '' });
    expect(s.mode).toBeUndefined();
    expect(s.maxWritesPerRun).toBe(20);
    expect(s.subscriptions).toBeUndefined();
    expect(s.storageConnection).toBeUndefined();
  });

  it('reads the ARM endpoint without its trailing slash', () => {
    expect(loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: 'http://127.0.0.1:8443/' }).armEndpoint).toBe('http://127.0.0.1:8443');
  });

  it('refuses an endpoint that is not an http(s) URL, naming the setting', () => {
    expect(configError({ AKS_NETGUARD_ARM_ENDPOINT: 'ftp://example.com' }).message).toContain('AKS_NETGUARD_ARM_ENDPOINT');
    expect(configError({ AKS_NETGUARD_ARM_ENDPOINT: 'management.azure.com' }).message).toContain('AKS_NETGUARD_ARM_ENDPOINT');
  });

  describe('modes', () => {
    it('names per-control settings after the id, upper-cased with underscores', () => {
      expect(modeSettingName('node-ssh-deny')).toBe('AKS_NETGUARD_MODE_NODE_SSH_DENY');
      expect(modeSettingName('api-authorized-ranges')).toBe('AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES');
      for (const id of CONTROL_IDS) expect(SETTING_NAMES).toContain(modeSettingName(id));
    });

    it('reads AKS_NETGUARD_MODE and per-control modes, in any case', () => {
      const s = loadSettings({ AKS_NETGUARD_MODE: 'Auto', AKS_NETGUARD_MODE_NODE_SSH_DENY: ' report ', AKS_NETGUARD_MODE_SERVICE_MESH: 'APPROVE' });
      expect(s.mode).toBe('auto');
      expect(s.controlModes).toEqual({ 'node-ssh-deny': 'report', 'service-mesh': 'approve' });
    });

    it('refuses an unknown global mode, naming the setting and the value', () => {
      const err = configError({ AKS_NETGUARD_MODE: 'enforce' });
      expect(err.message).toContain('AKS_NETGUARD_MODE');
      expect(err.message).toContain('"enforce"');
      expect(err.message).toMatch(/report, approve, auto/);
    });

    it('refuses an unknown per-control mode, naming that setting', () => {
      expect(configError({ AKS_NETGUARD_MODE_NODE_SSH_DENY: 'fix' }).message).toContain('AKS_NETGUARD_MODE_NODE_SSH_DENY');
    });
  });

  describe('authorized IP ranges', () => {
    it('reads CIDRs and bare addresses, as /32 or /128', () => {
      expect(loadSettings({ AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24, 198.51.100.7 ,2001:db8::1' }).authorizedIpRanges).toEqual([
        '203.0.113.0/24',
        '198.51.100.7/32',
        '2001:db8::1/128',
      ]);
    });

    // ipaddr.js alone also accepts the legacy inet_aton forms ("10.0.0", "010.0.0.1" read as octal 8.0.0.1,
    // "10/8" read as 0.0.0.10/8): each would silently authorize some other address than the one meant.
    it.each(['10.0.0.0/33', 'not-an-ip', '10.0.0', '010.0.0.1/32', '0x0a.0.0.1', '10/8'])('refuses %s, naming the setting and the entry', (bad) => {
      const err = configError({ AKS_NETGUARD_AUTHORIZED_IP_RANGES: `203.0.113.0/24,${bad}` });
      expect(err.message).toContain('AKS_NETGUARD_AUTHORIZED_IP_RANGES');
      expect(err.message).toContain(`"${bad}"`);
    });

    it.each(['0.0.0.0/0', '::/0', '10.0.0.0/0'])('refuses %s, which would open the API server to everyone', (open) => {
      expect(configError({ AKS_NETGUARD_AUTHORIZED_IP_RANGES: open }).message).toMatch(/every address/);
      expect(() => parseCidrList([open], 'somewhere')).toThrow(ConfigError);
    });
  });

  describe('whole numbers', () => {
    it('reads AKS_NETGUARD_MAX_WRITES_PER_RUN, 0 included', () => {
      expect(loadSettings({ AKS_NETGUARD_MAX_WRITES_PER_RUN: '5' }).maxWritesPerRun).toBe(5);
      expect(loadSettings({ AKS_NETGUARD_MAX_WRITES_PER_RUN: '0' }).maxWritesPerRun).toBe(0);
    });

    it.each(['ten', '2.5', '-1'])('refuses AKS_NETGUARD_MAX_WRITES_PER_RUN=%s, naming the setting', (bad) => {
      expect(configError({ AKS_NETGUARD_MAX_WRITES_PER_RUN: bad }).message).toContain('AKS_NETGUARD_MAX_WRITES_PER_RUN');
    });

    it('refuses a flap count of 0, naming the setting', () => {
      expect(configError({ AKS_NETGUARD_FLAP_COUNT: '0' }).message).toContain('AKS_NETGUARD_FLAP_COUNT');
    });
  });

  describe('lists and identities', () => {
    it('reads the subscriptions as a comma list', () => {
      const s = loadSettings({ AKS_NETGUARD_SUBSCRIPTIONS: '00000000-0000-0000-0000-000000000000, 11111111-1111-1111-1111-111111111111,' });
      expect(s.subscriptions).toEqual(['00000000-0000-0000-0000-000000000000', '11111111-1111-1111-1111-111111111111']);
    });

    it('refuses a subscription that is not an id, naming it', () => {
      const err = configError({ AKS_NETGUARD_SUBSCRIPTIONS: '00000000-0000-0000-0000-000000000000,my sub' });
      expect(err.message).toContain('AKS_NETGUARD_SUBSCRIPTIONS');
      expect(err.message).toContain('"my sub"');
    });

    it('lower-cases approvers and the principal id, so matching ignores case', () => {
      const s = loadSettings({ AKS_NETGUARD_APPROVERS: 'AAAA-1, bbbb-2', AKS_NETGUARD_PRINCIPAL_ID: 'CCCC-3' });
      expect(s.approvers).toEqual(['aaaa-1', 'bbbb-2']);
      expect(s.principalId).toBe('cccc-3');
    });

    it('reads the bot registration and storage under their usual names', () => {
      const s = loadSettings({ MicrosoftAppId: 'app', MicrosoftAppTenantId: 'tenant', MicrosoftAppType: 'SingleTenant', AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
      expect(s.bot).toMatchObject({ appId: 'app', tenantId: 'tenant', appType: 'SingleTenant' });
      expect(s.storageConnection).toBe('UseDevelopmentStorage=true');
    });
  });

  it('reads process.env when given nothing', () => {
    const saved = process.env.AKS_NETGUARD_MODE;
    process.env.AKS_NETGUARD_MODE = 'approve';
    try {
      expect(loadSettings().mode).toBe('approve');
    } finally {
      if (saved === undefined) delete process.env.AKS_NETGUARD_MODE;
      else process.env.AKS_NETGUARD_MODE = saved;
    }
  });
});
