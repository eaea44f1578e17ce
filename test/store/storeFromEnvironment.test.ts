import type { AccessToken, TokenCredential } from '@azure/identity';
import { TableStateStore, storeFromEnvironment } from '../../shared/store/tables';

// A credential that must never be asked: building a store makes no calls.
const unusedCredential: TokenCredential = {
  getToken: async (): Promise<AccessToken | null> => {
    throw new Error('building a store must not ask for a token');
  },
};

describe('storeFromEnvironment', () => {
  it('returns undefined when no storage is configured', () => {
    expect(storeFromEnvironment({})).toBeUndefined();
    expect(storeFromEnvironment({ AzureWebJobsStorage: '   ', AzureWebJobsStorage__accountName: '' })).toBeUndefined();
    expect(storeFromEnvironment({ AKS_NETGUARD_MODE: 'auto' })).toBeUndefined();
  });

  it('uses the local emulator for UseDevelopmentStorage=true', () => {
    const store = storeFromEnvironment({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    expect(store).toBeInstanceOf(TableStateStore);
    expect(store!.accountUrl).toBe('http://127.0.0.1:10002/devstoreaccount1');
    expect(store!.tableName('approvals')).toBe('netguardapprovals');
  });

  it('prefers the connection string over identity-based settings', () => {
    const store = storeFromEnvironment({
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=conn;AccountKey=a2V5;EndpointSuffix=core.windows.net',
      AzureWebJobsStorage__accountName: 'identity',
    });
    expect(store!.accountUrl).toBe('https://conn.table.core.windows.net');
  });

  it('reaches the account by identity from __accountName, __tableServiceUri or a sibling service URI', () => {
    const opts = { credential: unusedCredential, tablePrefix: 'ng' };
    expect(storeFromEnvironment({ AzureWebJobsStorage__accountName: 'stnetguard' }, opts)!.accountUrl).toBe(
      'https://stnetguard.table.core.windows.net',
    );
    expect(
      storeFromEnvironment(
        { AzureWebJobsStorage__tableServiceUri: 'https://stsov.table.core.usgovcloudapi.net/', AzureWebJobsStorage__accountName: 'ignored' },
        opts,
      )!.accountUrl,
    ).toBe('https://stsov.table.core.usgovcloudapi.net');
    const fromBlob = storeFromEnvironment({ AzureWebJobsStorage__blobServiceUri: 'https://stblob.blob.core.windows.net' }, opts)!;
    expect(fromBlob.accountUrl).toBe('https://stblob.table.core.windows.net');
    expect(fromBlob.tableName('audit')).toBe('ngaudit');
  });

  it('refuses a table prefix the service would reject', () => {
    expect(() => storeFromEnvironment({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' }, { tablePrefix: 'net-guard' })).toThrow(
      /net-guard/,
    );
  });
});
