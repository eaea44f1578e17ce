// Red team: with MicrosoftAppTenantId set, decisions from another tenant are refused (README). The
// other doors of the bot must be shut to that tenant too: a channel of another tenant that `subscribe`s
// would receive every approval card (nonces, cluster names, subscription ids, NSG rules, who changed
// what) and the digest, and `status` would list open drift and waiting approvals. Bot Framework
// activities through the registered teamsMessages function (test/teams/harness.ts).
import { useAzurite } from '../helpers/azurite';
import { channelMessage, pendingApproval, startHarness, type Harness } from '../teams/harness';

const FOREIGN_TENANT = '0f0f0f0f-1111-4222-8333-444455556666';
const azurite = useAzurite();
let h: Harness;

beforeEach(async () => {
  h = await startHarness(azurite);
});

afterEach(async () => {
  await h.connector.stop();
});

function fromForeignTenant(text: string): Record<string, any> {
  const a = channelMessage(h, text, '19:f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0@thread.tacv2');
  a.conversation.tenantId = FOREIGN_TENANT;
  a.channelData.tenant.id = FOREIGN_TENANT;
  return a;
}

test('a channel of another tenant cannot subscribe to the approval cards', async () => {
  const res = await h.post(fromForeignTenant('subscribe'));
  expect(res.status).toBe(200);
  expect(await h.tables.listChannels()).toEqual([]);
});

test('another tenant\'s `status` does not list the drift and approvals waiting', async () => {
  await pendingApproval(h);
  await h.post(fromForeignTenant('status'));
  const replies = h.connector.posted().map((c) => String(c.body.text ?? ''));
  expect(replies.join('\n')).not.toMatch(/aks-prod|http-application-routing|approval\(s\) waiting/);
});

test('the same messages from NetGuard\'s own tenant still work', async () => {
  await pendingApproval(h);
  await h.post(channelMessage(h, 'subscribe'));
  expect(await h.tables.listChannels()).toHaveLength(1);
  await h.post(channelMessage(h, 'status'));
  expect(h.connector.posted().map((c) => String(c.body.text ?? '')).join('\n')).toMatch(/approval\(s\) waiting/);
});
