// What can be checked of the deployment without the Bicep compiler: one source of truth for the event
// filter and the custom role, module wiring, every setting the code reads, and the built-in role ids.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadSettings, SETTING_NAMES } from '../../shared/config';
import { NETGUARD_ROLE_ACTIONS, NETGUARD_ROLE_DATA_ACTIONS } from '../../shared/azure/permissions';
import { KUBE_DATA_ACTIONS } from '../../shared/kube/access';
import { HANDLED_EVENT_TYPES, ROUTED_OPERATIONS } from '../../shared/events/operations';
import { storeFromEnvironment } from '../../shared/store/tables';
import { VERIFY_QUEUE } from '../../shared/store/verifyQueue';
import { SWEEP_QUEUE } from '../../shared/sweep/fanout';
import { NOTICE_QUEUE } from '../../shared/notify/queueSink';
import { generatedInfraFiles, ROLE_FILE, ROUTED_OPERATIONS_FILE } from '../../scripts/gen-infra';
import {
  bicepFiles,
  INFRA,
  modulesOf,
  objectAfter,
  paramsOf,
  readText,
  REPO,
  resourceBody,
  topLevelKeys,
  withoutComments,
} from './bicep';

const bicep = (relative: string) => withoutComments(readText(path.join(INFRA, relative)));
const json = <T>(relative: string): T => JSON.parse(readFileSync(path.join(REPO, relative), 'utf8')) as T;

describe('one source of truth for the event filter and the role', () => {
  it.each(Object.keys(generatedInfraFiles()))('%s is what scripts/gen-infra.ts writes from the code', (relative) => {
    const onDisk = existsSync(path.join(REPO, relative)) ? readFileSync(path.join(REPO, relative), 'utf8') : '(missing)';
    // On failure: run the command at the top of scripts/gen-infra.ts and commit the result.
    expect(onDisk).toBe(generatedInfraFiles()[relative]);
  });

  it('filters exactly the event types and operations the code routes', () => {
    const filter = json<{ eventTypes: string[]; operationNames: string[] }>(ROUTED_OPERATIONS_FILE);
    expect(filter.eventTypes).toEqual([...HANDLED_EVENT_TYPES]);
    expect(filter.operationNames).toEqual(ROUTED_OPERATIONS.map((o) => o.operation));
    // Event Grid takes at most 25 values in one StringIn filter.
    expect(filter.operationNames.length).toBeLessThanOrEqual(25);
  });

  it('builds the event subscription filter from that file: both event types, StringIn on data.operationName', () => {
    const events = bicep('app/event-subscription.bicep');
    expect(events).toMatch(/var routed = loadJsonContent\('\.\.\/generated\/routed-operations\.json'\)/);
    const subscription = resourceBody(events, 'toNetGuard');
    const filter = objectAfter(subscription, 'filter');
    expect(filter).toMatch(/includedEventTypes:\s*routed\.eventTypes/);
    expect(filter).toMatch(/operatorType:\s*'StringIn'/);
    expect(filter).toMatch(/key:\s*'data\.operationName'/);
    expect(filter).toMatch(/values:\s*routed\.operationNames/);
    expect(subscription).toMatch(/resourceId:\s*'\$\{functionAppId\}\/functions\/onResourceEvent'/);
    expect(objectAfter(subscription, 'retryPolicy')).toMatch(/maxDeliveryAttempts:\s*\d+/);
    expect(objectAfter(events, 'deadLetterDestination')).toMatch(/endpointType:\s*'StorageBlob'/);
    expect(resourceBody(bicep('app/events.bicep'), 'topic')).toMatch(/topicType:\s*'Microsoft\.Resources\.Subscriptions'/);
  });

  it('defines the custom role from the generated actions, which equal NETGUARD_ROLE_ACTIONS', () => {
    const role = json<{ actions: string[]; reasons: Record<string, string> }>(ROLE_FILE);
    expect(role.actions).toEqual(NETGUARD_ROLE_ACTIONS.map((a) => a.action));
    const definition = bicep('app/netguard-role.bicep');
    expect(definition).toMatch(/var role = loadJsonContent\('\.\.\/generated\/netguard-role\.json'\)/);
    const permissions = resourceBody(definition, 'netguardRole');
    expect(permissions).toMatch(/actions:\s*role\.actions/);
    expect(permissions).toMatch(/notActions:\s*\[\]/);
    expect(permissions).toMatch(/dataActions:\s*role\.dataActions/);
    expect(json<{ dataActions: string[] }>(ROLE_FILE).dataActions).toEqual(NETGUARD_ROLE_DATA_ACTIONS.map((a) => a.action));
    expect([...NETGUARD_ROLE_DATA_ACTIONS.map((a) => a.action)].sort()).toEqual([...KUBE_DATA_ACTIONS].sort());
    expect(permissions).toMatch(/type:\s*'CustomRole'/);
  });

  it('assigns the custom role at every watched subscription, to NetGuard identity only', () => {
    const main = bicep('main.bicep');
    expect(main).toMatch(/module watchedSubscription 'app\/watched-subscription\.bicep' = \[for subscriptionId in watched:/);
    expect(main).toMatch(/scope:\s*subscription\(subscriptionId\)/);
    const watched = bicep('app/watched-subscription.bicep');
    const assignment = resourceBody(watched, 'netguardAssignment');
    expect(assignment).toMatch(/roleDefinitionId:\s*subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', roleDefinitionName\)/);
    expect(assignment).toMatch(/principalType:\s*'ServicePrincipal'/);
  });
});

describe('module wiring (what the compiler would check)', () => {
  const files = bicepFiles();

  it('reads the modules of main.bicep with their params', () => {
    const modules = modulesOf(path.join(INFRA, 'main.bicep'));
    expect(modules.map((m) => m.symbol)).toEqual(
      expect.arrayContaining(['identity', 'monitoring', 'storage', 'rbac', 'functionApp', 'bot', 'netguardRole', 'watchedSubscription', 'deadLetterAccess']),
    );
    expect(modules.find((m) => m.symbol === 'functionApp')?.params).toEqual(expect.arrayContaining(['identityId', 'watchedSubscriptionIds', 'controlModes']));
  });

  it('finds the templates', () => {
    expect(files.map((f) => path.relative(INFRA, f)).sort()).toEqual(
      expect.arrayContaining(['main.bicep', 'app/function.bicep', 'app/events.bicep', 'app/rbac.bicep', 'app/bot.bicep']),
    );
  });

  it.each(bicepFiles().map((f) => [path.relative(INFRA, f), f]))('%s passes every module its required params and no unknown one', (_name, file) => {
    for (const mod of modulesOf(file)) {
      expect(existsSync(mod.file)).toBe(true);
      const declared = paramsOf(withoutComments(readText(mod.file)));
      const missing = declared.filter((p) => !p.hasDefault && !mod.params.includes(p.name)).map((p) => p.name);
      const unknown = mod.params.filter((name) => !declared.some((p) => p.name === name));
      expect({ module: mod.symbol, missing, unknown }).toEqual({ module: mod.symbol, missing: [], unknown: [] });
    }
  });

  it.each(bicepFiles().map((f) => [path.relative(INFRA, f), f]))('%s loads only files that exist', (_name, file) => {
    for (const m of readText(file).matchAll(/loadJsonContent\('([^']+)'\)/g)) {
      expect(existsSync(path.resolve(path.dirname(file), m[1]))).toBe(true);
    }
  });

  it('main.parameters.json names only parameters main.bicep declares, and starts in report mode', () => {
    const parameters = json<{ parameters: Record<string, { value: string }> }>('infra/main.parameters.json').parameters;
    const declared = paramsOf(bicep('main.bicep')).map((p) => p.name);
    expect(Object.keys(parameters).filter((p) => !declared.includes(p))).toEqual([]);
    const required = paramsOf(bicep('main.bicep')).filter((p) => !p.hasDefault).map((p) => p.name);
    expect(required.filter((p) => !(p in parameters))).toEqual([]);
    expect(parameters.netguardMode.value).toBe('${AKS_NETGUARD_MODE=report}');
    expect(bicep('main.bicep')).toMatch(/param netguardMode string = 'report'/);
  });

  it('azure.yaml deploys the Function App and its hooks exist', () => {
    const yaml = readFileSync(path.join(REPO, 'azure.yaml'), 'utf8');
    expect(yaml).toMatch(/host:\s*function/);
    expect(yaml).toMatch(/language:\s*ts/);
    for (const m of yaml.matchAll(/run:\s*\.\/(\S+)/g)) expect(existsSync(path.join(REPO, m[1]))).toBe(true);
    // The service name must match the azd-service-name tag on the Function App.
    const service = /services:\s*\n\s+([a-z0-9-]+):/.exec(yaml)?.[1];
    expect(bicep('app/function.bicep')).toContain(`'azd-service-name': '${service}'`);
  });

  it('keeps shared keys off the storage account and local auth off Application Insights', () => {
    expect(resourceBody(bicep('app/storage.bicep'), 'storage')).toMatch(/allowSharedKeyAccess:\s*false/);
    expect(resourceBody(bicep('app/monitoring.bicep'), 'appInsights')).toMatch(/DisableLocalAuth:\s*true/);
  });

  it('runs on Flex Consumption with Node 20 or 22 and a user-assigned identity', () => {
    const fn = bicep('app/function.bicep');
    expect(resourceBody(fn, 'plan')).toMatch(/tier:\s*'FlexConsumption'/);
    const app = resourceBody(fn, 'app');
    expect(objectAfter(app, 'runtime')).toMatch(/name:\s*'node'/);
    expect(fn).toMatch(/@allowed\(\[ '20', '22' \]\)\s*param nodeVersion/);
    expect(objectAfter(app, 'identity')).toMatch(/type:\s*'UserAssigned'/);
  });

  it('registers the bot to the managed identity, single tenant, with the Teams channel', () => {
    const bot = bicep('app/bot.bicep');
    const props = objectAfter(resourceBody(bot, 'bot'), 'properties');
    expect(props).toMatch(/msaAppType:\s*'UserAssignedMSI'/);
    expect(props).toMatch(/msaAppTenantId:\s*tenant\(\)\.tenantId/);
    expect(props).toMatch(/msaAppMSIResourceId:\s*identityId/);
    expect(resourceBody(bot, 'teams')).toMatch(/channelName:\s*'MsTeamsChannel'/);
    expect(bicep('main.bicep')).toMatch(/messagingEndpoint:\s*'https:\/\/\$\{functionApp\.outputs\.defaultHostName\}\/api\/messages'/);
  });
});

describe('settings', () => {
  const appSettings = () => {
    const fn = bicep('app/function.bicep');
    return topLevelKeys(objectAfter(resourceBody(fn, 'settings'), 'properties'));
  };
  /** Read by the code but deliberately not set in Azure, and why. */
  const OPTIONAL_IN_AZURE: Record<string, string> = {
    AzureWebJobsStorage: 'replaced by the identity-based AzureWebJobsStorage__accountName/__credential/__clientId',
    MicrosoftAppPassword: 'the bot authenticates with the managed identity (MicrosoftAppType UserAssignedMSI)',
  };

  it('sets every setting the code reads, except those documented as optional in Azure', () => {
    const set = appSettings();
    const missing = SETTING_NAMES.filter((name) => !set.includes(name) && !(name in OPTIONAL_IN_AZURE));
    expect(missing).toEqual([]);
    for (const name of Object.keys(OPTIONAL_IN_AZURE)) expect(set).not.toContain(name);
    expect(set).toEqual(
      expect.arrayContaining([
        'AzureWebJobsStorage__accountName',
        'AzureWebJobsStorage__credential',
        'AzureWebJobsStorage__clientId',
        'APPLICATIONINSIGHTS_CONNECTION_STRING',
        'AZURE_CLIENT_ID',
      ]),
    );
    expect(new Set(set).size).toBe(set.length);
  });

  it('points the code at the table service of the infra storage account with the managed identity', () => {
    const env = {
      AzureWebJobsStorage__accountName: 'stnetguardabc123',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '0b5e1e0d-1111-4222-8333-944455556666',
    };
    expect(appSettings()).toEqual(expect.arrayContaining(Object.keys(env)));
    expect(bicep('app/function.bicep')).toMatch(/AzureWebJobsStorage__credential:\s*'managedidentity'/);
    const credential = { getToken: async () => null };
    const store = storeFromEnvironment(env, { credential });
    expect(store?.accountUrl).toBe('https://stnetguardabc123.table.core.windows.net');
  });

  it('the defaults the infra passes are accepted by the code and start in report mode', () => {
    const fn = bicep('app/function.bicep');
    expect(fn).toMatch(/MicrosoftAppType:\s*'UserAssignedMSI'/);
    const main = bicep('main.bicep');
    const defaultOf = (param: string) => new RegExp(`param ${param} \\w+ = '?([^'\\n]*)'?`).exec(main)?.[1];
    const settings = loadSettings({
      AKS_NETGUARD_ARM_ENDPOINT: 'https://management.azure.com/', // environment().resourceManager ends with a slash
      AKS_NETGUARD_MODE: defaultOf('netguardMode'),
      AKS_NETGUARD_MAX_WRITES_PER_RUN: defaultOf('maxWritesPerRun'),
      AKS_NETGUARD_SWEEP_SCHEDULE: defaultOf('sweepSchedule'),
      AKS_NETGUARD_FLAP_COUNT: defaultOf('flapCount'),
      AKS_NETGUARD_FLAP_WINDOW_MINUTES: defaultOf('flapWindowMinutes'),
      AKS_NETGUARD_APPROVAL_TTL_HOURS: defaultOf('approvalTtlHours'),
      AKS_NETGUARD_MODE_NODE_SSH_DENY: '', // controlModes[?…] ?? '' when not given
      MicrosoftAppType: 'UserAssignedMSI',
    });
    expect(settings.mode).toBe('report');
    expect(settings.armEndpoint).toBe('https://management.azure.com');
    expect(settings.maxWritesPerRun).toBe(20);
    // The schedule is read by the Functions host (%AKS_NETGUARD_SWEEP_SCHEDULE% in dailySweep), not by the code.
    expect(defaultOf('sweepSchedule')).toBe('0 0 6 * * *');
    expect(settings.controlModes).toEqual({});
  });

  it('local.settings.sample.json lists every setting with a placeholder and a comment', () => {
    const sample = json<{ Values: Record<string, string>; _comments: Record<string, string> }>('local.settings.sample.json');
    for (const name of [...SETTING_NAMES, 'APPLICATIONINSIGHTS_CONNECTION_STRING']) {
      expect(sample.Values).toHaveProperty([name]);
      expect(sample._comments[name]?.length ?? 0).toBeGreaterThan(10);
    }
    expect(Object.keys(sample._comments).filter((k) => !k.startsWith('_') && !(k in sample.Values))).toEqual([]);
    expect(sample.Values.FUNCTIONS_WORKER_RUNTIME).toBe('node');
    expect(sample.Values.AKS_NETGUARD_MODE).toBe('report');
    // The sample must be accepted by the code as it is.
    expect(() => loadSettings(sample.Values)).not.toThrow();
  });
});

describe('built-in roles', () => {
  // Ids and names as Microsoft publishes them (learn.microsoft.com, "Azure built-in roles").
  const BUILT_IN_ROLES: Record<string, string> = {
    'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
    'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
    '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
    '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3': 'Storage Table Data Contributor',
    '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
  };
  const GUID = /'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'/gi;

  const uses = bicepFiles().flatMap((file) =>
    readText(file)
      .split('\n')
      .flatMap((line, i) => [...line.matchAll(GUID)].map((m) => ({ where: `${path.relative(INFRA, file)}:${i + 1}`, id: m[1].toLowerCase(), line }))),
  );

  it('uses built-in role ids, each the real one, named in a comment on its line', () => {
    expect(uses.length).toBeGreaterThanOrEqual(5);
    for (const use of uses) {
      expect({ where: use.where, name: BUILT_IN_ROLES[use.id] }).toEqual({ where: use.where, name: expect.any(String) });
      expect(use.line).toContain(`// ${BUILT_IN_ROLES[use.id]}`);
    }
  });

  it('gives NetGuard identity data access only to its own storage account and Application Insights', () => {
    const rbac = bicep('app/rbac.bicep');
    expect(resourceBody(rbac, 'storageAssignments')).toMatch(/scope:\s*storage\b/);
    expect(resourceBody(rbac, 'telemetryAssignment')).toMatch(/scope:\s*appInsights\b/);
    // The dead-letter writer is each system topic's own identity, on the dead-letter container only.
    expect(resourceBody(bicep('app/deadletter-access.bicep'), 'deadLetterWriter')).toMatch(/scope:\s*container\b/);
  });
});

describe('CI workflow', () => {
  it('installs, tests and builds every Bicep entry point', () => {
    const ci = readFileSync(path.join(REPO, '.github', 'workflows', 'ci.yml'), 'utf8');
    expect(ci).toMatch(/npm ci/);
    expect(ci).toMatch(/npm test/);
    expect(ci).toMatch(/az bicep build --file infra\/main\.bicep/);
  });
});

test('every queue a function listens on is created by the infra', () => {
  const root = path.join(__dirname, '..', '..');
  const storage = readFileSync(path.join(root, 'infra', 'app', 'storage.bicep'), 'utf8');
  const declared = new Set([...(/var queueNames = \[([^\]]*)\]/.exec(storage)?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]));
  // Queue names the code passes to app.storageQueue (as constants): resolve them from the modules.
  const listened = readdirSync(path.join(root, 'functions'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(root, 'functions', f), 'utf8'))
    .filter((src) => src.includes('app.storageQueue('));
  expect(listened).toHaveLength(3);
  expect(declared).toEqual(new Set([SWEEP_QUEUE, NOTICE_QUEUE, VERIFY_QUEUE]));
});
