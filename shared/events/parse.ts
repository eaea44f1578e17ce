// Parsing of Event Grid deliveries into NetGuard's one event shape. Pure: no I/O, no Azure calls.
//
// Accepted input: a JSON string (or UTF-8 bytes) or an already-parsed value; one event or an array;
// each event in the Event Grid schema or CloudEvents 1.0 (detected per event by `specversion`).
//
// What counts as malformed (the event is rejected, with a message naming the event and the field):
//   - the event is not a JSON object;
//   - `id` missing or not a non-empty string;
//   - neither `eventType` (Event Grid) nor `type` + `specversion` (CloudEvents) present as strings;
//     `specversion` other than "1.0"; `metadataVersion` present and other than "1";
//   - Event Grid schema: `subject` not a string, `eventTime` missing or not a date;
//     `topic`/`dataVersion` present but not strings;
//   - CloudEvents: `source` not a non-empty string; `subject`/`time` present but not strings, or a
//     `time` that is not a date;
//   - the SubscriptionValidationEvent without a string `data.validationCode`;
//   - for Microsoft.Resources.* events (the ARM family, whose data schema we know): `data` not an
//     object; `data.claims`/`data.authorization`/`data.httpRequest` neither an object nor a JSON string
//     encoding an object; for ResourceWriteSuccess/ResourceDeleteSuccess (the types NetGuard routes)
//     additionally: `data.operationName` missing, no resource id (`data.resourceUri`, else `subject`),
//     a resource id that is not an ARM resource id or holds a "." / ".." / empty segment, "?", "#", "%",
//     a backslash, a space or a control character (each would change the request URL it ends up in),
//     and, for the operations NetGuard routes, a resource id whose type differs from the operation's (a
//     rule operation on an NSG id would re-read the wrong resource) or that is not exactly
//     /subscriptions/{guid}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}/...
// Everything else is valid: events of other types (ResourceActionSuccess, storage events, …) parse and
// are later acknowledged without any call to Azure.
//
// @azure/eventgrid is used for its types only. Its EventGridDeserializer accepts every published
// sample here, but it is async, needs the schema chosen up front (no per-event detection), requires
// `topic`/`dataVersion`/`metadataVersion` even on hand-written events, reports errors without saying
// which event of a batch failed, and leaves string-encoded claims as strings; and importing the
// package at run time costs ~0.3 s of cold start for what here is a field comparison.

import type {
  KnownSystemEventTypes,
  ResourceAuthorization,
  ResourceWriteSuccessEventData,
  SubscriptionValidationEventData,
} from '@azure/eventgrid';
import { HANDLED_EVENT_TYPES, ROUTED_OPERATIONS, routedKindOf } from './operations';
import { parseResourceId, resourceIdShapeProblem, resourceTypeOf, unsafeIdProblem, type ParsedResourceId } from '../azure/ids';

/**
 * The most event input NetGuard reads (handle-event, serve): Event Grid's own limit on one delivered
 * batch (1 MB). Anything larger is refused before it is parsed; it cannot have come from Event Grid.
 */
export const MAX_EVENT_INPUT_BYTES = 1024 * 1024;

export const SUBSCRIPTION_VALIDATION_EVENT_TYPE: KnownSystemEventTypes = 'Microsoft.EventGrid.SubscriptionValidationEvent';

/** Who made the ARM call, from the event's claims and authorization evidence. */
export interface EventCaller {
  /** Entra object id from the token (`oid` / objectidentifier claim). */
  objectId?: string;
  /** The principal of the role assignment that allowed the call (`authorization.evidence.principalId`). */
  principalId?: string;
  /** Client (application) id: `appid` / `azp`. */
  appId?: string;
  name?: string;
  upn?: string;
}

export interface NetGuardEvent {
  id: string;
  eventType: string;
  subject: string;
  /** `data.resourceUri`, else `subject` ('' when neither). Always a valid ARM resource id for ResourceWrite/DeleteSuccess events. */
  resourceId: string;
  /** `data.operationName`, as sent (compare case-insensitively). */
  operationName?: string;
  /** From the resource id when it is an ARM id, else `data.subscriptionId`. */
  subscriptionId?: string;
  /** `eventTime` / `time`, as sent (ISO 8601). */
  time?: string;
  caller: EventCaller;
  schema: 'eventgrid' | 'cloudevents';
  /** The event exactly as received (string-encoded claims left as strings). */
  raw: Record<string, unknown>;
}

/** The Event Grid webhook handshake: acknowledged, never routed. */
export interface SubscriptionValidation {
  eventId: string;
  validationCode: string;
  validationUrl?: string;
}

export interface ParsedBatch {
  events: NetGuardEvent[];
  validation?: SubscriptionValidation;
}

export interface EventProblem {
  /** Position in the batch (0 for a single event). */
  index: number;
  id?: string;
  reason: string;
}

export interface LenientBatch {
  valid: NetGuardEvent[];
  invalid: EventProblem[];
  validation?: SubscriptionValidation;
}

export class MalformedEventError extends Error {
  /** Per-event problems; empty when the input as a whole is unusable (not JSON, not an object/array). */
  readonly problems: EventProblem[];
  constructor(message: string, problems: EventProblem[] = []) {
    super(message);
    this.name = 'MalformedEventError';
    this.problems = problems;
  }
}

/** "event 2 (id abc): missing data.operationName" */
export function describeProblem(p: EventProblem): string {
  return `event ${p.index}${p.id !== undefined ? ` (id ${p.id})` : ''}: ${p.reason}`;
}

/** Strict: every event must be well-formed, else MalformedEventError naming each bad event. */
export function parseEvents(input: unknown): ParsedBatch {
  const items = toItems(input);
  if (items.length === 0) throw new MalformedEventError('the input holds no events (an empty array)');
  const batch = parseItems(items);
  if (batch.invalid.length > 0) {
    const lead = items.length > 1 && batch.invalid.length > 1 ? `${batch.invalid.length} of ${items.length} events are malformed: ` : '';
    throw new MalformedEventError(lead + batch.invalid.map(describeProblem).join('; '), batch.invalid);
  }
  return batch.validation ? { events: batch.valid, validation: batch.validation } : { events: batch.valid };
}

/**
 * Lenient, for the Event Grid function: keeps the well-formed events of a batch and lists the others.
 * Still throws MalformedEventError when the input as a whole cannot be read (not JSON, not an event or array).
 */
export function parseEventsLenient(input: unknown): LenientBatch {
  return parseItems(toItems(input));
}

// ---------------------------------------------------------------------------------------------

const ARM_EVENT_PREFIX = 'Microsoft.Resources.';
const HANDLED = new Set<string>(HANDLED_EVENT_TYPES);

/** The resource type each routed operation acts on, e.g. ".../securityrules" for ".../securityRules/write". */
const OPERATION_RESOURCE_TYPE = new Map(
  ROUTED_OPERATIONS.map((o) => [o.operation.toLowerCase(), o.operation.toLowerCase().replace(/\/(write|delete)$/, '')]),
);

const CLAIM_OBJECT_ID = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
const CLAIM_APP_ID = ['appid', 'azp'];
const CLAIM_NAME = ['name'];
const CLAIM_UPN = ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn', 'upn', 'unique_name'];

type Json = Record<string, unknown>;

class EventRejected extends Error {}

function reject(reason: string): never {
  throw new EventRejected(reason);
}

function toItems(input: unknown): unknown[] {
  let value = input;
  if (value instanceof Uint8Array) value = Buffer.from(value).toString('utf8');
  if (typeof value === 'string') value = parseJsonText(value);
  if (Array.isArray(value)) return value;
  if (isObject(value)) return [value];
  throw new MalformedEventError(`the input must be an event object or an array of events, not ${describeType(value)}`);
}

function parseJsonText(text: string): unknown {
  // Files saved by Windows editors start with a byte-order mark, which JSON.parse refuses.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === '') throw new MalformedEventError('not valid JSON: the input is empty');
  try {
    return JSON.parse(body);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new MalformedEventError(`not valid JSON: ${message}${lineAndColumn(body, message)}`);
  }
}

/** V8 reports a character position; people read files by line and column. */
function lineAndColumn(text: string, message: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m) return '';
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

function parseItems(items: unknown[]): LenientBatch {
  const out: LenientBatch = { valid: [], invalid: [] };
  items.forEach((item, index) => {
    const id = isObject(item) && typeof item.id === 'string' ? item.id : undefined;
    try {
      const parsed = parseOne(item);
      if ('validationCode' in parsed) out.validation ??= parsed;
      else out.valid.push(parsed);
    } catch (err) {
      if (!(err instanceof EventRejected)) throw err;
      out.invalid.push(id !== undefined ? { index, id, reason: err.message } : { index, reason: err.message });
    }
  });
  return out;
}

function parseOne(item: unknown): NetGuardEvent | SubscriptionValidation {
  if (!isObject(item)) reject(`not a JSON object (got ${describeType(item)})`);
  const id = requiredString(item, 'id');

  let schema: NetGuardEvent['schema'];
  let eventType: string;
  let subject: string;
  let time: string | undefined;
  if (item.specversion !== undefined) {
    schema = 'cloudevents';
    if (item.specversion !== '1.0') reject(`specversion must be "1.0" (CloudEvents 1.0), got ${JSON.stringify(item.specversion)}`);
    eventType = requiredString(item, 'type');
    requiredString(item, 'source');
    subject = optionalString(item, 'subject') ?? '';
    time = optionalDate(item, 'time');
  } else if (item.eventType !== undefined) {
    schema = 'eventgrid';
    eventType = requiredString(item, 'eventType');
    if (typeof item.subject !== 'string') reject(item.subject === undefined ? 'missing subject' : `subject must be a string, got ${describeType(item.subject)}`);
    subject = checkText(item.subject, 'subject');
    time = optionalDate(item, 'eventTime');
    if (time === undefined) reject('missing eventTime');
    optionalString(item, 'topic');
    optionalString(item, 'dataVersion');
    const metadataVersion = optionalString(item, 'metadataVersion');
    if (metadataVersion !== undefined && metadataVersion !== '1') reject(`metadataVersion must be "1" (Event Grid schema), got "${metadataVersion}"`);
  } else if (item.type !== undefined) {
    reject('missing specversion (a CloudEvents event needs "specversion": "1.0")');
  } else {
    reject('missing eventType (Event Grid schema) or type and specversion (CloudEvents 1.0)');
  }

  if (eventType === SUBSCRIPTION_VALIDATION_EVENT_TYPE) return parseValidation(id, item.data);

  const data = item.data;
  const isArmEvent = eventType.startsWith(ARM_EVENT_PREFIX);
  const routedType = HANDLED.has(eventType);
  if (isArmEvent && !isObject(data)) {
    reject(data === undefined ? 'missing data' : `data must be an object, got ${describeType(data)}`);
  }
  const armData: Partial<ResourceWriteSuccessEventData> & Json = isObject(data) ? data : {};

  const claims = isArmEvent ? decodedObject(armData, 'claims') : undefined;
  const authorization = isArmEvent ? (decodedObject(armData, 'authorization') as Partial<ResourceAuthorization> | undefined) : undefined;
  // httpRequest is not used, but a corrupt one means the event was mangled on the way.
  if (isArmEvent) decodedObject(armData, 'httpRequest');

  const operationName = routedType ? requiredString(armData, 'operationName', 'data.') : typeof armData.operationName === 'string' ? armData.operationName : undefined;
  const resourceUri = routedType ? optionalString(armData, 'resourceUri', 'data.') : typeof armData.resourceUri === 'string' ? armData.resourceUri : undefined;
  const resourceId = resourceUri || subject;
  let subscriptionId: string | undefined;
  if (routedType) {
    if (!resourceId) reject('missing data.resourceUri and subject (no resource id)');
    const field = resourceUri ? 'data.resourceUri' : 'subject';
    subscriptionId = checkedArmId(resourceId, field).subscriptionId;
    checkOperationMatchesId(operationName!, resourceId);
    // A routed id is followed into request URLs: only the exact shape of a resource in a group passes.
    if (routedKindOf(operationName)) {
      const problem = resourceIdShapeProblem(resourceId);
      if (problem) reject(`${field} "${printable(resourceId)}" is not a well-formed Azure resource id: ${problem}`);
    }
  } else {
    subscriptionId = subscriptionOfLoose(resourceId);
  }
  subscriptionId ??= typeof armData.subscriptionId === 'string' ? armData.subscriptionId : undefined;

  const event: NetGuardEvent = {
    id,
    eventType,
    subject,
    resourceId,
    caller: callerOf(claims, authorization),
    schema,
    raw: item,
  };
  if (operationName !== undefined) event.operationName = operationName;
  if (subscriptionId !== undefined) event.subscriptionId = subscriptionId;
  if (time !== undefined) event.time = time;
  return event;
}

function parseValidation(eventId: string, data: unknown): SubscriptionValidation {
  if (!isObject(data)) reject(data === undefined ? 'missing data' : `data must be an object, got ${describeType(data)}`);
  const d = data as Partial<SubscriptionValidationEventData> & Json;
  const validationCode = requiredString(d, 'validationCode', 'data.');
  const validationUrl = optionalString(d, 'validationUrl', 'data.');
  return validationUrl ? { eventId, validationCode, validationUrl } : { eventId, validationCode };
}

/** claims / authorization / httpRequest: an object, or (as in some SDK test data) a JSON string of one. */
function decodedObject(data: Json, field: string): Json | undefined {
  const value = data[field];
  if (value === undefined || value === null) return undefined;
  if (isObject(value)) return value;
  if (typeof value === 'string') {
    let decoded: unknown;
    try {
      decoded = JSON.parse(value);
    } catch (err) {
      reject(`data.${field} is a string but not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    if (isObject(decoded)) return decoded;
    reject(`data.${field} is a JSON string but encodes ${describeType(decoded)}, not an object`);
  }
  reject(`data.${field} must be an object or a JSON-encoded object, got ${describeType(value)}`);
}

function callerOf(claims: Json | undefined, authorization: Partial<ResourceAuthorization> | undefined): EventCaller {
  const caller: EventCaller = {};
  const objectId = firstClaim(claims, CLAIM_OBJECT_ID);
  const appId = firstClaim(claims, CLAIM_APP_ID);
  const name = firstClaim(claims, CLAIM_NAME);
  const upn = firstClaim(claims, CLAIM_UPN);
  const evidence: unknown = authorization?.evidence;
  const principalId = isObject(evidence) && typeof evidence.principalId === 'string' && evidence.principalId ? evidence.principalId : undefined;
  if (objectId) caller.objectId = objectId;
  if (principalId) caller.principalId = principalId;
  if (appId) caller.appId = appId;
  if (name) caller.name = name;
  if (upn) caller.upn = upn;
  return caller;
}

function firstClaim(claims: Json | undefined, names: string[]): string | undefined {
  if (!claims) return undefined;
  for (const n of names) {
    const v = claims[n];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

function checkedArmId(id: string, field: string): ParsedResourceId {
  const unsafe = unsafeIdProblem(id);
  if (unsafe) reject(`${field} "${printable(id)}" is not a well-formed Azure resource id: ${unsafe}`);
  const parsed = tryParseId(id, field);
  const unnamed = parsed.segments.find(([type, name]) => !type || !name);
  if (unnamed) reject(`${field} "${id}" is not an Azure resource id: the name after "${unnamed[0]}" is missing`);
  if (parsed.provider === '' || (parsed.provider !== undefined && parsed.segments.length === 0)) {
    reject(`${field} "${id}" is not an Azure resource id: no resource type after the provider`);
  }
  return parsed;
}

function tryParseId(id: string, field: string): ParsedResourceId {
  try {
    return parseResourceId(id);
  } catch (err) {
    reject(`${field} ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkOperationMatchesId(operationName: string, resourceId: string): void {
  const expected = OPERATION_RESOURCE_TYPE.get(operationName.toLowerCase());
  if (!expected) return;
  const actual = resourceTypeOf(resourceId);
  if (actual !== expected) {
    reject(`data.operationName "${operationName}" acts on ${expected} but the resource id "${resourceId}" is a ${actual}`);
  }
}

/** The id as it can be shown in a log line: control characters escaped, long ids cut. */
function printable(id: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = id.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > 300 ? `${escaped.slice(0, 300)}…` : escaped;
}

function subscriptionOfLoose(id: string): string | undefined {
  try {
    return id ? parseResourceId(id).subscriptionId : undefined;
  } catch {
    return undefined;
  }
}

// JSON can spell half of a UTF-16 surrogate pair ("\ud800"), which is no Unicode text: Event Grid never
// sends one, and it cannot be percent-encoded (encodeURIComponent throws), so an event id or resource id
// holding one would fail later as if storage or Azure had failed, and be retried for a day.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(v: string, what: string): string {
  if (LONE_SURROGATE.test(v)) reject(`${what} is not valid Unicode text (it holds half of a surrogate pair)`);
  return v;
}

function requiredString(obj: Json, field: string, prefix = ''): string {
  const v = obj[field];
  if (v === undefined || v === null) reject(`missing ${prefix}${field}`);
  if (typeof v !== 'string') reject(`${prefix}${field} must be a string, got ${describeType(v)}`);
  if (v.trim() === '') reject(`${prefix}${field} is empty`);
  return checkText(v, `${prefix}${field}`);
}

function optionalString(obj: Json, field: string, prefix = ''): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') reject(`${prefix}${field} must be a string, got ${describeType(v)}`);
  return checkText(v, `${prefix}${field}`);
}

function optionalDate(obj: Json, field: string): string | undefined {
  const v = optionalString(obj, field);
  if (v === undefined) return undefined;
  if (Number.isNaN(Date.parse(v))) reject(`${field} is not a date: "${v}"`);
  return v;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'undefined') return 'undefined';
  return `a ${typeof v}`;
}
