// The infra's answer to what Azure allows per watched subscription, read from the Bicep text (the
// compiler cannot be installed here; CI compiles it): one Microsoft.Resources.Subscriptions system topic
// per subscription (an existing one is reused: only the event subscription is created on it), the
// region limited to where Flex Consumption exists, and the hand-off from the preprovision hook.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { bicepFiles, blockAt, INFRA, modulesOf, paramsOf, readText, REPO, resourceBody, withoutComments } from './bicep';

const bicep = (relative: string) => withoutComments(readText(path.join(INFRA, relative)));

/** The declaration line of a resource or module (everything up to its `{`), with its condition. */
function declaration(code: string, symbol: string): string {
  const m = new RegExp(`^(resource|module)\\s+${symbol}\\s+'[^']+'[^{]*\\{`, 'm').exec(code);
  if (!m) throw new Error(`no ${symbol}`);
  return m[0];
}

describe('an existing system topic is reused, never duplicated', () => {
  const watched = bicep('app/watched-subscription.bicep');

  it('creates a system topic in exactly one place, events.bicep, and reads it elsewhere as existing', () => {
    const creators = bicepFiles().filter((f) => /^resource\s+\w+\s+'Microsoft\.EventGrid\/systemTopics@[^']+'\s*=/m.test(withoutComments(readText(f))));
    expect(creators.map((f) => path.relative(INFRA, f))).toEqual(['app/events.bicep']);
    expect(declaration(bicep('app/event-subscription.bicep'), 'topic')).toMatch(/'Microsoft\.EventGrid\/systemTopics@[^']+'\s+existing\s*=/);
  });

  it('finds the existing topic of its own subscription among the ones the hook found', () => {
    expect(paramsOf(watched).find((p) => p.name === 'existingSystemTopicIds')).toMatchObject({ type: 'array', hasDefault: true });
    expect(watched).toMatch(/var existingHere = filter\(existingSystemTopicIds, id => toLower\(split\(id, '\/'\)\[2\]\) == toLower\(subscription\(\)\.subscriptionId\)\)/);
  });

  it('creates the events group and topic only without an existing topic, and else only the event subscription on it', () => {
    expect(declaration(watched, 'eventsGroup')).toMatch(/=\s*if \(empty\(existingTopicId\)\)/);
    expect(declaration(watched, 'events')).toMatch(/'events\.bicep'\s*=\s*if \(empty\(existingTopicId\)\)/);
    const onExisting = declaration(watched, 'eventsOnExistingTopic');
    expect(onExisting).toMatch(/'event-subscription\.bicep'\s*=\s*if \(!empty\(existingTopicId\) && eventsEnabled\)/);
    const body = blockAt(watched, watched.indexOf(onExisting) + onExisting.length - 1);
    expect(body).toMatch(/scope:\s*resourceGroup\(existingTopicGroup\)/);
    expect(body).toMatch(/topicName:\s*existingTopicName\b/);
    expect(watched).toMatch(/var existingTopicGroup = empty\(existingTopicId\) \? '[^']+' : split\(existingTopicId, '\/'\)\[4\]/);
    expect(watched).toMatch(/var existingTopicName = empty\(existingTopicId\) \? '[^']+' : last\(split\(existingTopicId, '\/'\)\)/);
    expect(body).toMatch(/deadLetterWithTopicIdentity:\s*false/);
    // The topic NetGuard creates gets the subscription through the same module.
    expect(declaration(bicep('app/events.bicep'), 'eventSubscription')).toMatch(/'event-subscription\.bicep'\s*=\s*if \(eventsEnabled\)/);
  });

  it('grants dead-letter access only to topics NetGuard created', () => {
    const main = bicep('main.bicep');
    expect(declaration(main, 'deadLetterAccess')).toMatch(/\[for \(subscriptionId, i\) in watched: if \(!contains\(subscriptionsWithExistingTopic, toLower\(subscriptionId\)\)\)/);
    expect(main).toMatch(/var subscriptionsWithExistingTopic = map\(existingTopicIds, t => toLower\(split\(t, '\/'\)\[2\]\)\)/);
    expect(modulesOf(path.join(INFRA, 'main.bicep')).find((m) => m.symbol === 'watchedSubscription')?.params).toContain('existingSystemTopicIds');
  });

  it('takes the topics from the hook: one name from the hook to main.parameters.json to the parameter', () => {
    const parameters = JSON.parse(readFileSync(path.join(INFRA, 'main.parameters.json'), 'utf8')).parameters;
    expect(parameters.existingSystemTopics.value).toBe('${AKS_NETGUARD_EXISTING_SYSTEM_TOPICS}');
    expect(paramsOf(bicep('main.bicep')).find((p) => p.name === 'existingSystemTopics')).toMatchObject({ type: 'string', hasDefault: true });
    for (const hook of ['preprovision.sh', 'preprovision.ps1']) {
      expect(readFileSync(path.join(INFRA, 'hooks', hook), 'utf8')).toMatch(/azd env set AKS_NETGUARD_EXISTING_SYSTEM_TOPICS/);
    }
    // …and the outputs the hook reads on the next run to know what was there before.
    const main = bicep('main.bicep');
    for (const output of ['NETGUARD_WATCHED_SUBSCRIPTIONS', 'NETGUARD_EXISTING_SYSTEM_TOPICS', 'NETGUARD_IDENTITY_PRINCIPAL_ID', 'NETGUARD_ROLE_DEFINITION_NAME']) {
      expect(main).toMatch(new RegExp(`^output ${output} string`, 'm'));
      expect(readFileSync(path.join(INFRA, 'hooks', 'preprovision.sh'), 'utf8')).toContain(output);
    }
  });
});

describe('one azd provision removes a subscription', () => {
  it('runs the preprovision hook, in both shells, before Bicep shrinks the role\'s assignable scopes', () => {
    const yaml = parse(readFileSync(path.join(REPO, 'azure.yaml'), 'utf8')) as { hooks: Record<string, { posix: { run: string }; windows: { run: string } }> };
    expect(yaml.hooks.preprovision.posix.run).toBe('./infra/hooks/preprovision.sh');
    expect(yaml.hooks.preprovision.windows.run).toBe('./infra/hooks/preprovision.ps1');
    expect(resourceBody(bicep('app/netguard-role.bicep'), 'netguardRole')).toMatch(/assignableScopes:\s*\[for id in assignableSubscriptionIds:/);
  });
});

describe('location', () => {
  const main = bicep('main.bicep');
  const allowed = () => {
    const m = /@allowed\(\[([^\]]*)\]\)[^@]*?(?:@\w+\([^)]*\)\s*)*?(?:@metadata\(\{[\s\S]*?\}\)\s*)?param location string/.exec(main);
    return m ? [...m[1].matchAll(/'([a-z0-9]+)'/g)].map((x) => x[1]) : [];
  };

  it('offers only regions with Flex Consumption, as azd location choices', () => {
    const regions = allowed();
    expect(regions.length).toBeGreaterThan(20);
    expect(regions).toEqual(expect.arrayContaining(['westeurope', 'northeurope', 'eastus', 'eastus2', 'uksouth', 'swedencentral', 'australiaeast', 'japaneast']));
    // Regions Microsoft's Flex Consumption list does not have (and never a canary or a sovereign cloud).
    for (const missing of ['westindia', 'brazilsoutheast', 'eastus2euap', 'chinaeast2', 'usgovvirginia', 'qatarcentral']) expect(regions).not.toContain(missing);
    expect(new Set(regions).size).toBe(regions.length);
    expect(main).toMatch(/@metadata\(\{\s*azd:\s*\{\s*type:\s*'location'\s*\}\s*\}\)\s*param location string/);
  });
});
