// The published payloads the test kit builds from, as data of the kit: byte-for-byte copies (in
// testkit/published/) of files in test/fixtures/azure, whose PROVENANCE.md names their sources and
// licences. They are imported, not read from disk, so the kit (and `aks-netguard demo` from dist/)
// works wherever it is installed and never reads the repository's test fixtures at run time.
// test/testkit/fleet.test.ts checks that each copy is still identical to its fixture.
import managedClustersGet from './published/arm-aks-2026-01-01/ManagedClustersGet.json';
import managedClustersCreateAzureServiceMesh from './published/arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json';
import networkSecurityGroupGet from './published/arm-network-2026-01-01/NetworkSecurityGroupGet.json';
import virtualNetworkGet from './published/arm-network-2026-01-01/VirtualNetworkGet.json';
import subnetGet from './published/arm-network-2026-01-01/SubnetGet.json';
import demistoClustersList from './published/third-party/demisto-content_AzureKubernetesServices_clusters_list_response.json';
import subscriptionResourceWriteSuccess from './published/eventgrid/eventgrid-schema/subscription_ResourceWriteSuccess.json';
import subscriptionResourceDeleteSuccess from './published/eventgrid/eventgrid-schema/subscription_ResourceDeleteSuccess.json';

/** Each sample by its path under test/fixtures/azure (and under testkit/published). */
const SAMPLES = {
  'arm-aks-2026-01-01/ManagedClustersGet.json': managedClustersGet,
  'arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json': managedClustersCreateAzureServiceMesh,
  'arm-network-2026-01-01/NetworkSecurityGroupGet.json': networkSecurityGroupGet,
  'arm-network-2026-01-01/VirtualNetworkGet.json': virtualNetworkGet,
  'arm-network-2026-01-01/SubnetGet.json': subnetGet,
  'third-party/demisto-content_AzureKubernetesServices_clusters_list_response.json': demistoClustersList,
  'eventgrid/eventgrid-schema/subscription_ResourceWriteSuccess.json': subscriptionResourceWriteSuccess,
  'eventgrid/eventgrid-schema/subscription_ResourceDeleteSuccess.json': subscriptionResourceDeleteSuccess,
} as const;

export type PublishedSample = keyof typeof SAMPLES;
export const PUBLISHED_SAMPLES = Object.keys(SAMPLES) as PublishedSample[];

/**
 * A published sample as a fresh object: the imported module is one shared value, and the builders
 * vary what they get in place, so every caller gets its own deep copy.
 */
export function publishedSample<T = unknown>(name: PublishedSample): T {
  return structuredClone(SAMPLES[name]) as unknown as T;
}
