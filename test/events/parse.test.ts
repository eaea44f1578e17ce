import { MalformedEventError, parseEvents, parseEventsLenient, type NetGuardEvent } from '../../shared/events/parse';
import { armEvent, publishedEventFiles, RULE_ID, NSG_ID, sampleEvent, sampleText, SUB } from './eventSamples';

const INVALID_CLOUDEVENT = 'cloudevents-schema/resource-group_ResourceActionSuccess.cloudevents.AS-PUBLISHED-INVALID-JSON.txt';

function malformedMessage(input: unknown): string {
  try {
    parseEvents(input);
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedEventError);
    return (err as Error).message;
  }
  throw new Error('parseEvents accepted the input');
}

describe('Microsoft-published samples, parsed as published', () => {
  it.each(publishedEventFiles())('%s parses from its exact text', (file) => {
    const text = sampleText(file);
    const published = JSON.parse(text)[0];
    const batch = parseEvents(text);
    if (published.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent') {
      expect(batch.events).toEqual([]);
      expect(batch.validation?.validationCode).toBe(published.data.validationCode);
      return;
    }
    expect(batch.validation).toBeUndefined();
    expect(batch.events).toHaveLength(1);
    const e = batch.events[0];
    expect(e.id).toBe(published.id);
    expect(e.eventType).toBe(published.eventType ?? published.type);
    expect(e.schema).toBe(published.specversion ? 'cloudevents' : 'eventgrid');
    expect(e.resourceId).toBe(published.data.resourceUri);
    expect(e.operationName).toBe(published.data.operationName);
    expect(e.time).toBe(published.eventTime ?? published.time);
    expect(e.raw).toEqual(published);
  });

  it('takes the caller from the claims and the evidence of the subscription write sample', () => {
    const [e] = parseEvents(sampleText('eventgrid-schema/subscription_ResourceWriteSuccess.json')).events;
    expect(e.subject).toBe('/subscriptions/{subscription-id}/resourcegroups/{resource-group}/providers/Microsoft.Storage/storageAccounts/{storage-name}');
    expect(e.subscriptionId).toBe('{subscription-id}');
    // A user call: oid, app id, display name and UPN are all present; the evidence has only a role.
    expect(e.caller).toEqual({ objectId: '{ID}', appId: '{ID}', name: '{full-name}', upn: '{user-name}' });
  });

  it('reads the role-assignment principal from the evidence of the action sample (a service principal)', () => {
    const [e] = parseEvents(sampleText('eventgrid-schema/resource-group_ResourceActionSuccess.json')).events;
    expect(e.caller.principalId).toBe('{ID}');
    expect(e.caller.upn).toBeUndefined();
    expect(e.operationName).toBe('Microsoft.EventHub/namespaces/AuthorizationRules/listKeys/action');
  });

  it('normalizes the CloudEvents and Event Grid versions of one event to the same fields', () => {
    const [eg] = parseEvents(sampleText('eventgrid-schema/resource-group_ResourceDeleteSuccess.json')).events;
    const [ce] = parseEvents(sampleText('cloudevents-schema/resource-group_ResourceDeleteSuccess.cloudevents.json')).events;
    const comparable = ({ raw, schema, ...rest }: NetGuardEvent) => rest;
    expect(ce.schema).toBe('cloudevents');
    expect(eg.schema).toBe('eventgrid');
    expect(comparable(ce)).toEqual(comparable(eg));
  });

  it('decodes claims, authorization and httpRequest sent as JSON strings (the Java SDK test data)', () => {
    const asStrings = sampleEvent('sdk-testdata/azure-sdk-for-java_ResourceDeleteSuccessEvent.json');
    expect(typeof asStrings.data.claims).toBe('string');
    const claims = JSON.parse(asStrings.data.claims);
    claims.oid = 'A1B2C3D4-0000-4000-8000-00000000000A';
    claims.upn = 'ops@contoso.example';
    asStrings.data.claims = JSON.stringify(claims);
    const authorization = JSON.parse(asStrings.data.authorization);
    authorization.evidence.principalId = 'f00dfeed-0000-4000-8000-000000000001';
    asStrings.data.authorization = JSON.stringify(authorization);

    const [e] = parseEvents([asStrings]).events;
    expect(e.caller).toEqual({
      objectId: 'A1B2C3D4-0000-4000-8000-00000000000A',
      upn: 'ops@contoso.example',
      principalId: 'f00dfeed-0000-4000-8000-000000000001',
    });
    // raw keeps the event as delivered
    expect(typeof e.raw.data).toBe('object');
    expect(typeof (e.raw.data as Record<string, unknown>).claims).toBe('string');
  });

  it('gives the same caller whether the Java sample carries objects or strings', () => {
    const asObjects = sampleEvent('sdk-testdata/azure-sdk-for-java_ResourceWriteSuccessEvent.json');
    const asStrings = sampleEvent('sdk-testdata/azure-sdk-for-java_ResourceDeleteSuccessEvent.json');
    for (const e of [asObjects, asStrings]) {
      const claims = typeof e.data.claims === 'string' ? JSON.parse(e.data.claims) : e.data.claims;
      claims.appid = '11111111-2222-4333-8444-555555555555';
      claims.name = 'deploy pipeline';
      e.data.claims = typeof e.data.claims === 'string' ? JSON.stringify(claims) : claims;
    }
    const [a, b] = parseEvents([asObjects, asStrings]).events;
    expect(a.caller).toEqual({ appId: '11111111-2222-4333-8444-555555555555', name: 'deploy pipeline' });
    expect(b.caller).toEqual(a.caller);
  });

  it('acknowledges the SubscriptionValidationEvent with its code and URL, routing nothing', () => {
    const batch = parseEvents(sampleText('eventgrid-schema/SubscriptionValidationEvent.json'));
    expect(batch).toEqual({
      events: [],
      validation: {
        eventId: '2d1781af-3a4c-4d7c-bd0c-e34b19da4e66',
        validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
        validationUrl: expect.stringContaining('https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/estest/validate'),
      },
    });
    const lenient = parseEventsLenient(sampleText('eventgrid-schema/SubscriptionValidationEvent.json'));
    expect(lenient.valid).toEqual([]);
    expect(lenient.validation?.validationCode).toBe('512d38b6-c7b8-40c8-89fe-f46f9e9622b6');
  });

  it('rejects the published CloudEvents sample that is not valid JSON, saying where', () => {
    const text = sampleText(INVALID_CLOUDEVENT);
    const message = malformedMessage(text);
    expect(message).toMatch(/^not valid JSON: /);
    // The comma is missing at the end of line 3 ("source"); JSON.parse notices at the next property.
    expect(message).toContain('(line 4, column 3)');
    expect(() => parseEventsLenient(text)).toThrow(MalformedEventError);
  });
});

describe('input forms', () => {
  const write = () => armEvent({ verb: 'write', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write', resourceId: RULE_ID });

  it('accepts one event object as well as an array, as text, bytes or a parsed value', () => {
    const one = write();
    for (const input of [one, [one], JSON.stringify(one), Buffer.from(JSON.stringify([one])), '\uFEFF' + JSON.stringify(one)]) {
      const { events } = parseEvents(input);
      expect(events).toHaveLength(1);
      expect(events[0].resourceId).toBe(RULE_ID);
      expect(events[0].subscriptionId).toBe(SUB);
    }
  });

  it('takes the resource id from the subject when data.resourceUri is absent', () => {
    const e = write();
    delete e.data.resourceUri;
    expect(parseEvents(e).events[0].resourceId).toBe(RULE_ID);
  });

  it('keeps events of other types valid but leaves them unrouted (ResourceActionSuccess)', () => {
    const { events } = parseEvents(sampleText('eventgrid-schema/subscription_ResourceActionSuccess.json'));
    expect(events[0].eventType).toBe('Microsoft.Resources.ResourceActionSuccess');
  });

  it('accepts a CloudEvents event without time, and a non-ARM event type with any data', () => {
    const ce = armEvent({ verb: 'write', schema: 'cloudevents', operationName: 'Microsoft.Network/networkSecurityGroups/write', resourceId: NSG_ID });
    delete ce.time;
    expect(parseEvents(ce).events[0].time).toBeUndefined();
    const blob = { id: 'b1', eventType: 'Microsoft.Storage.BlobCreated', subject: '/blobServices/default/containers/c/blobs/x', eventTime: '2024-01-01T00:00:00Z', data: 'opaque' };
    expect(parseEvents(blob).events[0].caller).toEqual({});
  });
});

describe('malformed events', () => {
  const base = () => armEvent({ verb: 'write', id: 'abc', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write', resourceId: RULE_ID });

  const cases: Array<[string, (e: Record<string, any>) => unknown, string]> = [
    ['missing id', (e) => { delete e.id; return e; }, 'event 0: missing id'],
    ['id of the wrong type', (e) => { e.id = 42; return e; }, 'event 0: id must be a string, got a number'],
    ['missing eventType', (e) => { delete e.eventType; return e; }, 'event 0 (id abc): missing eventType (Event Grid schema) or type and specversion (CloudEvents 1.0)'],
    ['CloudEvents type without specversion', (e) => { e.type = e.eventType; delete e.eventType; return e; }, 'event 0 (id abc): missing specversion'],
    ['unsupported specversion', (e) => { e.specversion = '0.3'; e.type = e.eventType; e.source = e.topic; return e; }, 'event 0 (id abc): specversion must be "1.0" (CloudEvents 1.0), got "0.3"'],
    ['CloudEvents without source', (e) => { e.specversion = '1.0'; e.type = e.eventType; return e; }, 'event 0 (id abc): missing source'],
    ['missing data.operationName', (e) => { delete e.data.operationName; return e; }, 'event 0 (id abc): missing data.operationName'],
    ['operationName not a string', (e) => { e.data.operationName = ['write']; return e; }, 'event 0 (id abc): data.operationName must be a string, got an array'],
    ['missing data', (e) => { delete e.data; return e; }, 'event 0 (id abc): missing data'],
    ['no resource id at all', (e) => { delete e.data.resourceUri; e.subject = ''; return e; }, 'event 0 (id abc): missing data.resourceUri and subject'],
    ['resource id that is not an ARM id', (e) => { e.data.resourceUri = 'aks-agentpool-12345678-nsg'; return e; }, 'event 0 (id abc): data.resourceUri "aks-agentpool-12345678-nsg" is not an Azure resource id'],
    ['a collection path instead of a resource', (e) => { e.data.resourceUri = `${NSG_ID}/securityRules`; return e; }, 'the name after "securityRules" is missing'],
    ['rule operation on an NSG id', (e) => { e.data.resourceUri = NSG_ID; return e; }, 'acts on microsoft.network/networksecuritygroups/securityrules but the resource id'],
    ['claims a string that is not JSON', (e) => { e.data.claims = '{oid: nope'; return e; }, 'event 0 (id abc): data.claims is a string but not valid JSON'],
    ['authorization a number', (e) => { e.data.authorization = 7; return e; }, 'event 0 (id abc): data.authorization must be an object or a JSON-encoded object, got a number'],
    ['httpRequest a JSON array', (e) => { e.data.httpRequest = '[]'; return e; }, 'event 0 (id abc): data.httpRequest is a JSON string but encodes an array, not an object'],
    ['eventTime not a date', (e) => { e.eventTime = '{event-time}'; return e; }, 'event 0 (id abc): eventTime is not a date: "{event-time}"'],
    ['missing eventTime', (e) => { delete e.eventTime; return e; }, 'event 0 (id abc): missing eventTime'],
    ['subject of the wrong type', (e) => { e.subject = { id: RULE_ID }; return e; }, 'event 0 (id abc): subject must be a string, got an object'],
    ['metadataVersion 2', (e) => { e.metadataVersion = '2'; return e; }, 'event 0 (id abc): metadataVersion must be "1"'],
    ['an event that is a string', () => ['just text'], 'event 0: not a JSON object (got a string ("just text"))'],
    // Ids that would change the request URL they end up in (issue 9, item 3).
    ['a ".." segment', (e) => { e.data.resourceUri = `${NSG_ID}/securityRules/../../x/securityRules/r`; return e; }, 'is not a well-formed Azure resource id: it has a ".." segment'],
    ['a "." segment', (e) => { e.data.resourceUri = `${NSG_ID}/securityRules/.`; return e; }, 'it has a "." segment'],
    ['a query', (e) => { e.data.resourceUri = `${RULE_ID}?api-version=1&y=`; return e; }, 'it contains "?", which no Azure resource id has'],
    ['a fragment', (e) => { e.data.resourceUri = `${RULE_ID}#x`; return e; }, 'it contains "#"'],
    ['percent-encoding', (e) => { e.data.resourceUri = `${NSG_ID}/securityRules/%2e%2e`; return e; }, 'it contains "%"'],
    ['a control character', (e) => { e.data.resourceUri = `${RULE_ID}\u0000`; return e; }, 'it contains a control character (U+0000)'],
    ['an empty segment', (e) => { e.data.resourceUri = RULE_ID.replace('/resourceGroups/', '//resourceGroups/'); return e; }, 'it has an empty segment'],
    ['a subscription that is not a GUID', (e) => { e.data.resourceUri = RULE_ID.replace(/subscriptions\/[^/]+/, 'subscriptions/..x'); return e; }, 'the subscription "..x" is not a GUID'],
    ['no resource group', (e) => { e.data.resourceUri = RULE_ID.replace(/\/resourceGroups\/[^/]+/, ''); return e; }, 'it names no resource group'],
    ['an unsafe subject when there is no resourceUri', (e) => { delete e.data.resourceUri; e.subject = `${RULE_ID}?x=1`; return e; }, 'subject "'],
  ];

  it.each(cases)('%s', (_name, mutate, expected) => {
    const message = malformedMessage(mutate(base()));
    expect(message).toContain(expected);
  });

  it('checks the characters of ids of operations it does not route, but not their shape (the published placeholders stay valid)', () => {
    const storage = sampleEvent('eventgrid-schema/subscription_ResourceWriteSuccess.json');
    expect(parseEvents(storage).events[0].resourceId).toContain('{subscription-id}');
    storage.data.resourceUri = `${storage.data.resourceUri}/..`;
    expect(malformedMessage(storage)).toContain('it has a ".." segment');
  });

  it('rejects a validation event without its code', () => {
    const v = sampleEvent('eventgrid-schema/SubscriptionValidationEvent.json');
    delete v.data.validationCode;
    expect(malformedMessage(v)).toBe('event 0 (id 2d1781af-3a4c-4d7c-bd0c-e34b19da4e66): missing data.validationCode');
  });

  it('rejects inputs that hold no event at all', () => {
    expect(malformedMessage('[]')).toBe('the input holds no events (an empty array)');
    expect(malformedMessage('42')).toBe('the input must be an event object or an array of events, not a number');
    expect(malformedMessage(null)).toBe('the input must be an event object or an array of events, not null');
    expect(malformedMessage('   ')).toBe('not valid JSON: the input is empty');
  });

  it('in a batch with one bad event: strict parse names it, lenient parse keeps the others', () => {
    const good1 = armEvent({ verb: 'write', id: 'g1', operationName: 'Microsoft.Network/networkSecurityGroups/write', resourceId: NSG_ID });
    const bad = armEvent({ verb: 'delete', id: 'bad-2', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/delete', resourceId: RULE_ID });
    delete bad.data.operationName;
    const good2 = armEvent({ verb: 'write', schema: 'cloudevents', id: 'g3', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write', resourceId: RULE_ID });
    const batch = [good1, bad, good2];

    let thrown: unknown;
    try {
      parseEvents(JSON.stringify(batch));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(MalformedEventError);
    expect((thrown as MalformedEventError).message).toBe('event 1 (id bad-2): missing data.operationName');
    expect((thrown as MalformedEventError).problems).toEqual([{ index: 1, id: 'bad-2', reason: 'missing data.operationName' }]);

    const lenient = parseEventsLenient(batch);
    expect(lenient.valid.map((e) => e.id)).toEqual(['g1', 'g3']);
    expect(lenient.invalid).toEqual([{ index: 1, id: 'bad-2', reason: 'missing data.operationName' }]);
  });

  it('names every bad event of a batch when there are several', () => {
    const a = base();
    delete a.id;
    const b = base();
    b.id = 'second';
    b.data.resourceUri = 'not-an-id';
    const message = malformedMessage([a, base(), b]);
    expect(message).toMatch(/^2 of 3 events are malformed: event 0: missing id; event 2 \(id second\): data\.resourceUri "not-an-id" is not an Azure resource id/);
  });
});
