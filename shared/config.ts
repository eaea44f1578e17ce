// The environment (app settings), parsed once and validated; a bad value fails fast with a clear message.
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { AddressSet, wholeFamiliesOf } from './net/addressSet';
import { CONTROL_IDS, MODES, type ControlId, type Mode } from './types';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Settings {
  armEndpoint: string;
  /** undefined: every subscription the identity can list. */
  subscriptions?: string[];
  /** AKS_NETGUARD_MODE */
  mode?: Mode;
  /** AKS_NETGUARD_MODE_<ID> */
  controlModes: Partial<Record<ControlId, Mode>>;
  authorizedIpRanges?: string[];
  principalId?: string;
  maxWritesPerRun: number;
  approvers: string[];
  bot: { appId?: string; tenantId?: string; appType?: string; appPassword?: string };
  storageConnection?: string;
  flap: { count: number; windowMinutes: number };
  approvalTtlHours: number;
  /** AKS_NETGUARD_ARM_TIMEOUT_SECONDS: how long one try of one ARM request may take. */
  armTimeoutSeconds: number;
  /** AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES: namespaces instance-metadata does not judge. */
  imdsExcludedNamespaces: string[];
}

export const DEFAULT_IMDS_EXCLUDED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];

export const DEFAULT_ARM_ENDPOINT = 'https://management.azure.com';

/** AKS_NETGUARD_MODE_NODE_SSH_DENY for node-ssh-deny. */
export function modeSettingName(control: ControlId): string {
  return `AKS_NETGUARD_MODE_${control.toUpperCase().replace(/-/g, '_')}`;
}

/** Every setting NetGuard reads, for documentation and the infra tests. */
export const SETTING_NAMES = [
  'AKS_NETGUARD_ARM_ENDPOINT',
  'AKS_NETGUARD_SUBSCRIPTIONS',
  'AKS_NETGUARD_MODE',
  ...CONTROL_IDS.map(modeSettingName),
  'AKS_NETGUARD_AUTHORIZED_IP_RANGES',
  'AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES',
  'AKS_NETGUARD_PRINCIPAL_ID',
  'AKS_NETGUARD_MAX_WRITES_PER_RUN',
  'AKS_NETGUARD_APPROVERS',
  'AKS_NETGUARD_SWEEP_SCHEDULE',
  'AKS_NETGUARD_FLAP_COUNT',
  'AKS_NETGUARD_FLAP_WINDOW_MINUTES',
  'AKS_NETGUARD_APPROVAL_TTL_HOURS',
  'AKS_NETGUARD_ARM_TIMEOUT_SECONDS',
  'MicrosoftAppId',
  'MicrosoftAppTenantId',
  'MicrosoftAppType',
  'MicrosoftAppPassword',
  'AzureWebJobsStorage',
] as const;

const GUIDISH = /^[0-9a-fA-F-]{1,64}$/;

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function parseMode(value: string, where: string): Mode {
  const v = value.trim().toLowerCase();
  if ((MODES as readonly string[]).includes(v)) return v as Mode;
  throw new ConfigError(`${where}: "${value}" is not a mode; use one of ${MODES.join(', ')}.`);
}

/** Parses a CIDR or a bare address (taken as /32 or /128); throws ConfigError naming the bad entry. */
export function parseCidrList(values: string[], where: string): string[] {
  return values.map((raw) => {
    // Strict forms only: ipaddr.js also takes legacy shorthands (octal "010.0.0.1", "10/8") that
    // would silently authorize an address nobody meant.
    const [addrText, lenText, extra] = raw.split('/');
    const isV4 = ipaddr.IPv4.isValidFourPartDecimal(addrText);
    const isV6 = !isV4 && addrText.includes(':') && ipaddr.IPv6.isValid(addrText);
    const max = isV4 ? 32 : 128;
    const len = lenText === undefined ? max : /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
    if ((!isV4 && !isV6) || extra !== undefined || !(len >= 0 && len <= max)) {
      throw new ConfigError(`${where}: "${raw}" is not an IP address or CIDR range.`);
    }
    if (len === 0) throw new ConfigError(`${where}: "${raw}" opens the API server to every address; NetGuard never restores it.`);
    return `${ipaddr.parse(addrText).toString()}/${len}`;
  });
}

const intSetting = (name: string, def: number, min: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name}: "${v}" must be a whole number ≥ ${min}.` });
        return z.NEVER;
      }
      return n;
    });

/** Seconds as a positive number (fractions allowed, so tests can use a short timeout), at most one hour. */
const secondsSetting = (name: string, def: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || n > 3600) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name}: "${v}" must be a number of seconds greater than 0 and at most 3600.` });
        return z.NEVER;
      }
      return n;
    });

const envSchema = z.object({
  AKS_NETGUARD_MAX_WRITES_PER_RUN: intSetting('AKS_NETGUARD_MAX_WRITES_PER_RUN', 20, 0),
  AKS_NETGUARD_FLAP_COUNT: intSetting('AKS_NETGUARD_FLAP_COUNT', 3, 1),
  AKS_NETGUARD_FLAP_WINDOW_MINUTES: intSetting('AKS_NETGUARD_FLAP_WINDOW_MINUTES', 60, 1),
  AKS_NETGUARD_APPROVAL_TTL_HOURS: intSetting('AKS_NETGUARD_APPROVAL_TTL_HOURS', 24, 1),
  AKS_NETGUARD_ARM_TIMEOUT_SECONDS: secondsSetting('AKS_NETGUARD_ARM_TIMEOUT_SECONDS', 30),
});

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const blank = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const parsed = envSchema.safeParse({
    AKS_NETGUARD_MAX_WRITES_PER_RUN: env.AKS_NETGUARD_MAX_WRITES_PER_RUN,
    AKS_NETGUARD_FLAP_COUNT: env.AKS_NETGUARD_FLAP_COUNT,
    AKS_NETGUARD_FLAP_WINDOW_MINUTES: env.AKS_NETGUARD_FLAP_WINDOW_MINUTES,
    AKS_NETGUARD_APPROVAL_TTL_HOURS: env.AKS_NETGUARD_APPROVAL_TTL_HOURS,
    AKS_NETGUARD_ARM_TIMEOUT_SECONDS: env.AKS_NETGUARD_ARM_TIMEOUT_SECONDS,
  });
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => i.message).join(' '));

  const armEndpoint = (blank('AKS_NETGUARD_ARM_ENDPOINT') ?? DEFAULT_ARM_ENDPOINT).replace(/\/+$/, '');
  try {
    const u = new URL(armEndpoint);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw new ConfigError(`AKS_NETGUARD_ARM_ENDPOINT: "${armEndpoint}" is not an http(s) URL.`);
  }

  const subscriptions = list(env.AKS_NETGUARD_SUBSCRIPTIONS);
  for (const s of subscriptions) {
    if (!GUIDISH.test(s)) throw new ConfigError(`AKS_NETGUARD_SUBSCRIPTIONS: "${s}" is not a subscription id.`);
  }

  const controlModes: Partial<Record<ControlId, Mode>> = {};
  for (const id of CONTROL_IDS) {
    const v = blank(modeSettingName(id));
    if (v) controlModes[id] = parseMode(v, modeSettingName(id));
  }
  const ranges = list(env.AKS_NETGUARD_AUTHORIZED_IP_RANGES);
  const authorizedIpRanges = ranges.length ? parseCidrList(ranges, 'AKS_NETGUARD_AUTHORIZED_IP_RANGES') : undefined;
  // Ranges that together leave no gap (0.0.0.0/1 + 128.0.0.0/1) open the API server as much as a /0.
  const whole = authorizedIpRanges ? wholeFamiliesOf(AddressSet.fromPrefixes(authorizedIpRanges)) : [];
  if (whole.length > 0) {
    throw new ConfigError(
      `AKS_NETGUARD_AUTHORIZED_IP_RANGES: "${ranges.join(',')}" together admit every ${whole.map((f) => `IPv${f}`).join(' and ')} address, which would open the API server to everyone; NetGuard never restores such a list. List only the ranges that need access.`,
    );
  }

  return {
    armEndpoint,
    subscriptions: subscriptions.length ? subscriptions : undefined,
    mode: blank('AKS_NETGUARD_MODE') ? parseMode(blank('AKS_NETGUARD_MODE')!, 'AKS_NETGUARD_MODE') : undefined,
    controlModes,
    authorizedIpRanges,
    principalId: blank('AKS_NETGUARD_PRINCIPAL_ID')?.toLowerCase(),
    maxWritesPerRun: parsed.data.AKS_NETGUARD_MAX_WRITES_PER_RUN,
    approvers: list(env.AKS_NETGUARD_APPROVERS).map((a) => a.toLowerCase()),
    bot: {
      appId: blank('MicrosoftAppId'),
      tenantId: blank('MicrosoftAppTenantId'),
      appType: blank('MicrosoftAppType'),
      appPassword: blank('MicrosoftAppPassword'),
    },
    storageConnection: blank('AzureWebJobsStorage'),
    flap: {
      count: parsed.data.AKS_NETGUARD_FLAP_COUNT,
      windowMinutes: parsed.data.AKS_NETGUARD_FLAP_WINDOW_MINUTES,
    },
    approvalTtlHours: parsed.data.AKS_NETGUARD_APPROVAL_TTL_HOURS,
    armTimeoutSeconds: parsed.data.AKS_NETGUARD_ARM_TIMEOUT_SECONDS,
    // A set value replaces the default list (so kube-system can be judged too).
    imdsExcludedNamespaces: env.AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES === undefined ? DEFAULT_IMDS_EXCLUDED_NAMESPACES : list(env.AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES),
  };
}
