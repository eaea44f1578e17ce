// Where NetGuard's storage is and how to reach it, from the Functions host's own settings:
// `AzureWebJobsStorage` (a connection string; Azurite locally), else the identity-based
// `AzureWebJobsStorage__*` settings (service URIs or account name, credential, client id).
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { ConfigError } from '../config';

export type StorageService = 'blob' | 'queue' | 'table';

const setting = (env: NodeJS.ProcessEnv, name: string) => env[name]?.trim() || undefined;

/**
 * `AzureWebJobsStorage`, checked: a value the storage SDKs cannot use fails here with ConfigError
 * (exit 2 on the CLI) naming the setting, instead of an SDK error such as "Cannot read properties of
 * undefined" later. The message names keys, never values: the string holds the account key.
 */
export function storageConnectionString(env: NodeJS.ProcessEnv): string | undefined {
  const value = setting(env, 'AzureWebJobsStorage');
  if (value !== undefined) {
    const problem = connectionStringProblem(value);
    if (problem) {
      throw new ConfigError(
        `AzureWebJobsStorage is not a usable Azure Storage connection string: ${problem}. Use UseDevelopmentStorage=true for Azurite, or the account's connection string (DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net).`,
      );
    }
  }
  return value;
}

const KNOWN_KEYS = new Set([
  'defaultendpointsprotocol', 'accountname', 'accountkey', 'endpointsuffix', 'sharedaccesssignature',
  'blobendpoint', 'queueendpoint', 'tableendpoint', 'fileendpoint', 'usedevelopmentstorage', 'developmentstorageproxyuri',
]);

/** Why the SDKs could not use this connection string for tables and queues, in words that quote no value. */
export function connectionStringProblem(connectionString: string): string | undefined {
  const segments = connectionString.split(';').map((x) => x.trim()).filter(Boolean);
  if (segments.length === 0) return 'it is empty';
  const parts = new Map<string, string>();
  for (const [i, segment] of segments.entries()) {
    const eq = segment.indexOf('=');
    if (eq <= 0) return `part ${i + 1} is not a Key=Value pair`;
    const key = segment.slice(0, eq).trim().toLowerCase();
    if (!KNOWN_KEYS.has(key)) return `part ${i + 1} has a key that Azure Storage connection strings do not have`;
    parts.set(key, segment.slice(eq + 1).trim());
  }
  const dev = parts.get('usedevelopmentstorage');
  if (dev !== undefined) return dev.toLowerCase() === 'true' ? undefined : 'UseDevelopmentStorage must be true when present';
  for (const service of ['table', 'queue'] as const) {
    const endpoint = parts.get(`${service}endpoint`);
    if (endpoint !== undefined) {
      if (!/^https?:\/\/[^/\s]+/i.test(endpoint)) return `${service[0].toUpperCase()}${service.slice(1)}Endpoint is not an http(s) URL`;
      continue;
    }
    if (!parts.get('accountname')) return `it has neither a ${service[0].toUpperCase()}${service.slice(1)}Endpoint nor an AccountName`;
    if (!parts.get('endpointsuffix')) return `it has no EndpointSuffix (core.windows.net in Azure) to build the ${service} endpoint from`;
    const protocol = parts.get('defaultendpointsprotocol')?.toLowerCase();
    if (protocol !== undefined && protocol !== 'https' && protocol !== 'http') return 'DefaultEndpointsProtocol must be https or http';
  }
  const hasKey = !!parts.get('accountname') && !!parts.get('accountkey');
  if (!hasKey && !parts.get('sharedaccesssignature')) return 'it has neither AccountName and AccountKey nor a SharedAccessSignature';
  if (hasKey && !/^[A-Za-z0-9+/]+=*$/.test(parts.get('accountkey')!)) return 'AccountKey is not base64';
  return undefined;
}

function parseConnectionString(connectionString: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const segment of connectionString.split(';')) {
    const eq = segment.indexOf('=');
    if (eq > 0) parts.set(segment.slice(0, eq).trim().toLowerCase(), segment.slice(eq + 1).trim());
  }
  return parts;
}

/** True when the connection string reaches `service` over plain http (Azurite): clients must allow it. */
export function usesPlainHttp(connectionString: string, service: StorageService): boolean {
  const parts = parseConnectionString(connectionString);
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') return true;
  const endpoint = parts.get(`${service}endpoint`);
  if (endpoint) return endpoint.toLowerCase().startsWith('http:');
  return parts.get('defaultendpointsprotocol')?.toLowerCase() === 'http';
}

/**
 * The service URL for identity-based access: `AzureWebJobsStorage__<service>ServiceUri`, else
 * `__accountName`, else the same account's URI of another service. undefined when none is set.
 */
export function storageServiceUrl(env: NodeJS.ProcessEnv, service: StorageService): string | undefined {
  const own = setting(env, `AzureWebJobsStorage__${service}ServiceUri`);
  if (own) return own.replace(/\/+$/, '');
  const account = setting(env, 'AzureWebJobsStorage__accountName');
  if (account) return `https://${account}.${service}.core.windows.net`;
  for (const sibling of (['blob', 'queue', 'table'] as const).filter((s) => s !== service)) {
    const uri = setting(env, `AzureWebJobsStorage__${sibling}ServiceUri`);
    const pattern = new RegExp(`^(https://[^./]+)\\.${sibling}\\.`, 'i');
    if (uri && pattern.test(uri)) return uri.replace(pattern, `$1.${service}.`).replace(/\/+$/, '');
  }
  return undefined;
}

/** Loads @azure/identity only when a token is first needed (its import costs ~0.4 s of cold start). */
export class LazyStorageCredential implements TokenCredential {
  private inner?: Promise<TokenCredential>;
  constructor(
    private readonly clientId?: string,
    private readonly managedIdentityOnly = false,
  ) {}
  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.inner ??= import('@azure/identity').then((identity) =>
      this.managedIdentityOnly
        ? new identity.ManagedIdentityCredential(this.clientId ? { clientId: this.clientId } : {})
        : new identity.DefaultAzureCredential(this.clientId ? { managedIdentityClientId: this.clientId } : {}),
    );
    return (await this.inner).getToken(scopes, options);
  }
}

/** `__credential=managedidentity` and `__clientId` choose the identity, as the Functions host does. */
export function storageCredentialFromEnvironment(env: NodeJS.ProcessEnv): TokenCredential {
  return new LazyStorageCredential(
    setting(env, 'AzureWebJobsStorage__clientId'),
    setting(env, 'AzureWebJobsStorage__credential')?.toLowerCase() === 'managedidentity',
  );
}
