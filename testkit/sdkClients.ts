// Real ARM SDK clients pointed at an ArmSandbox, for tests. Production code builds its own clients
// (shared/azure); this exists so tests everywhere drive the sandbox through the genuine SDKs.
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { NetworkManagementClient } from '@azure/arm-network';
import { SubscriptionClient } from '@azure/arm-resources-subscriptions';
import { bearerTokenAuthenticationPolicyName, type Pipeline, type PipelinePolicy } from '@azure/core-rest-pipeline';

export const SANDBOX_BEARER_TOKEN = 'sandbox';

export interface SandboxClientOptions {
  /** Passed to every client, e.g. `{ maxRetries: 0 }` or `{ retryDelayInMs: 10 }`. */
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Strip If-Match/If-None-Match from GETs (the SDK copies custom headers onto LRO polls). Default true. */
  stripConditionalHeadersOnGet?: boolean;
}

export interface SandboxClients {
  network: NetworkManagementClient;
  containerService: ContainerServiceClient;
  subscriptions: SubscriptionClient;
}

/** Never asked for a token: the bearer policy that would ask is removed from every pipeline. */
// Typed from the client so no extra package (@azure/core-auth) is needed.
const unusedCredential: ConstructorParameters<typeof NetworkManagementClient>[0] = {
  getToken: async () => ({ token: SANDBOX_BEARER_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }),
};

const sandboxAuthorizationPolicy: PipelinePolicy = {
  name: 'sandboxAuthorizationPolicy',
  sendRequest: (request, next) => {
    request.headers.set('Authorization', `Bearer ${SANDBOX_BEARER_TOKEN}`);
    return next(request);
  },
};

const stripConditionalHeadersOnGetPolicy: PipelinePolicy = {
  name: 'sandboxStripConditionalHeadersOnGet',
  sendRequest: (request, next) => {
    if (request.method === 'GET') {
      request.headers.delete('If-Match');
      request.headers.delete('If-None-Match');
    }
    return next(request);
  },
};

/** Makes a client's pipeline talk plain HTTP to the sandbox with a fixed token. */
export function configureSandboxPipeline(pipeline: Pipeline, options: SandboxClientOptions = {}): void {
  pipeline.removePolicy({ name: bearerTokenAuthenticationPolicyName });
  pipeline.addPolicy(sandboxAuthorizationPolicy, { phase: 'Sign' });
  if (options.stripConditionalHeadersOnGet !== false) pipeline.addPolicy(stripConditionalHeadersOnGetPolicy, { phase: 'Sign' });
}

export function sandboxClients(endpoint: string, subscriptionId: string, options: SandboxClientOptions = {}): SandboxClients {
  const common = { endpoint, allowInsecureConnection: true, retryOptions: options.retryOptions };
  const network = new NetworkManagementClient(unusedCredential, subscriptionId, common);
  const containerService = new ContainerServiceClient(unusedCredential, subscriptionId, common);
  const subscriptions = new SubscriptionClient(unusedCredential, common);
  for (const client of [network, containerService, subscriptions]) configureSandboxPipeline(client.pipeline, options);
  return { network, containerService, subscriptions };
}
