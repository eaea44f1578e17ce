// Where NetGuard's storage is and how to reach it, from the Functions host's own settings:
// `AzureWebJobsStorage` (a connection string; Azurite locally), else the identity-based
// `AzureWebJobsStorage__*` settings (service URIs or account name, credential, client id).
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

export type StorageService = 'blob' | 'queue' | 'table';

const setting = (env: NodeJS.ProcessEnv, name: string) => env[name]?.trim() || undefined;

export function storageConnectionString(env: NodeJS.ProcessEnv): string | undefined {
  return setting(env, 'AzureWebJobsStorage');
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
