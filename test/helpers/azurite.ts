// Tests start Azurite exactly as the CLI's demo does; see shared/store/azuriteProcess.ts.
export { startAzurite, azuriteConnectionString, AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME } from '../../shared/store/azuriteProcess';
export type { AzuriteInstance, StartAzuriteOptions } from '../../shared/store/azuriteProcess';
