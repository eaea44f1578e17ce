// POST /api/messages: the Bot Framework endpoint of the Teams bot. The Teams SDK is imported inside
// the handler, so the event and timer functions of the same app never pay its ~0.7 s import.
import { app, HttpResponse, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import type { BotHttpRequest, BotHttpResponse } from '../shared/teams/bot';

/** Any host's request, as the bot needs it. */
export type BotRequestHandler = (request: BotHttpRequest) => Promise<BotHttpResponse>;

let defaultHandler: Promise<BotRequestHandler> | undefined;
function loadDefaultHandler(log: (line: string) => void): Promise<BotRequestHandler> {
  defaultHandler ??= import('../shared/teams/host').then((host) => (request: BotHttpRequest) => host.handleBotRequest(request, log));
  return defaultHandler;
}

/**
 * Adapts a Functions request to the bot; `handler` lets tests pass their own bot (which then enforces
 * its own authentication, see NetGuardBot). Without one this is the deployed function, which fails
 * closed (DESIGN.md, Safety invariants): 401 to every request unless `MicrosoftAppId` is set, and the
 * Bot Framework token is checked before anything else is looked at or built (settings, storage), so
 * an unauthenticated caller learns nothing about the configuration.
 */
export async function teamsMessages(
  request: HttpRequest,
  context: InvocationContext,
  handler?: BotRequestHandler,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HttpResponseInit> {
  const deployed = handler === undefined;
  if (deployed && (!env.MicrosoftAppId?.trim() || !/^Bearer\s+\S+/i.test(request.headers.get('authorization') ?? ''))) {
    return new HttpResponse({ status: 401 });
  }
  const text = await request.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    return new HttpResponse({ status: 400, jsonBody: { error: 'The body is not JSON.' } });
  }
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  if (deployed) {
    const { authenticateBotRequest, botSettingsFromEnvironment } = await import('../shared/teams/bot');
    if (!(await authenticateBotRequest(botSettingsFromEnvironment(env), headers, body, (line) => context.warn(line)))) return new HttpResponse({ status: 401 });
  }
  const run = handler ?? (await loadDefaultHandler((line) => context.log(line)));
  const result = await run({ method: request.method, headers, body });
  return new HttpResponse({ status: result.status, headers: result.headers, body: result.body });
}

app.http('teamsMessages', {
  methods: ['POST'],
  route: 'messages',
  authLevel: 'anonymous',
  handler: instrumented((request, context) => teamsMessages(request, context), { countApprovals: true }),
});
