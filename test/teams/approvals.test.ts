// The approval flow end to end through the Bot Framework protocol: the card is delivered from a
// queued notice to every subscribed channel (connector stand-in), a click arrives as the
// adaptiveCard/action invoke Teams sends, and the decision is recorded in Azurite.
import { deliverNotice } from '../../shared/notify/queueSink';
import type { ApprovalRecord } from '../../shared/store/types';
import { APPROVAL_VERBS, type ApprovalActionData } from '../../shared/teams/cards';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import { useAzurite } from '../helpers/azurite';
import { validateCard15 } from './adaptiveCard15';
import { APPROVER, cardClick, channelMessage, pendingApproval, SECOND_APPROVER, startHarness, type Harness } from './harness';

const azurite = useAzurite();
let h: Harness;
const CHANNEL_A = '19:aaaa0000000000000000000000000001@thread.tacv2';
const CHANNEL_B = '19:bbbb0000000000000000000000000002@thread.tacv2';

beforeEach(async () => {
  h = await startHarness(azurite);
  await h.post(channelMessage(h, 'subscribe', CHANNEL_A));
  await h.post(channelMessage(h, 'subscribe', CHANNEL_B));
  h.connector.calls.length = 0;
});
afterEach(async () => {
  await h.connector.stop();
});

const deps = () => ({ channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });

/** Delivers the approval card and returns the copy posted in channel A and its button payloads. */
async function deliver(approval: ApprovalRecord) {
  const result = await deliverNotice({ kind: 'approval-requested', approval }, deps());
  expect(result).toMatchObject({ delivered: true, channels: 2, posted: 2 });
  const copy = h.connector.posted().find((c) => c.conversationId === CHANNEL_A)!;
  const card = copy.body.attachments[0].content;
  const buttons = card.body.find((e: any) => e.type === 'ActionSet').actions as Array<{ verb: string; data: ApprovalActionData }>;
  const button = (action: ApprovalActionData['action']) => buttons.find((b) => b.data.action === action)!;
  return { copy, card, button, activityId: `1:${h.connector.posted().indexOf(copy) + 1}` };
}

function click(copy: { conversationId: string }, activityId: string, b: { verb: string; data: unknown }, from = APPROVER, extra: Partial<Parameters<typeof cardClick>[1]> = {}) {
  return h.post(cardClick(h, { replyToId: activityId, conversationId: copy.conversationId, verb: b.verb, data: b.data, from, ...extra }));
}

test('an approval notice arrives as one valid 1.5 card per subscribed channel, never twice', async () => {
  const approval = await pendingApproval(h);
  const { card } = await deliver(approval);
  expect(validateCard15(card)).toEqual([]);
  const texts = JSON.stringify(card);
  expect(texts).toContain('alice@contoso.com');
  expect(texts).toContain('https://portal.azure.com/#@/resource/subscriptions/');
  expect(texts).toContain('properties.addonProfiles.httpApplicationRouting.enabled: true → false');
  expect(texts).toContain('The control is in approve mode.');
  expect(new Set(h.connector.posted().map((c) => c.conversationId))).toEqual(new Set([CHANNEL_A, CHANNEL_B]));

  // The same notice again (a host retry) posts nothing new.
  const again = await deliverNotice({ kind: 'approval-requested', approval }, deps());
  expect(again.posted).toBe(0);
  expect(h.connector.posted()).toHaveLength(2);
  expect((await h.store.getApproval(approval.id))?.delivered).toBe(true);
});

test('approve: the executor runs once, the card is replaced for everyone, the decision is audited', async () => {
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const res = await click(copy, activityId, button('approve'));

  expect(res.status).toBe(200);
  expect(res.body.type).toBe('application/vnd.microsoft.card.adaptive');
  expect(validateCard15(res.body.value)).toEqual([]);
  expect(JSON.stringify(res.body.value)).toMatch(/Approved by Rido \(c5e99701[^)]*\) at .*: done\./);
  expect(h.executor.calls).toEqual([{ approvalId: approval.id, decidedBy: `Rido (${APPROVER})` }]);

  // Both channels' copies were updated in place (PUT on the posted activity ids), without buttons.
  const updates = h.connector.updates();
  expect(updates.map((u) => u.conversationId).sort()).toEqual([CHANNEL_A, CHANNEL_B].sort());
  for (const u of updates) expect(JSON.stringify(u.body)).not.toContain('Action.Execute');

  const stored = await h.store.getApproval(approval.id);
  expect(stored).toMatchObject({ state: 'approved', decidedBy: `Rido (${APPROVER})` });
  const audit = await h.store.listAudit();
  expect(audit.map((a) => a.event)).toContain('approved-applied');
});

test('a double click and two approvers racing apply once; the others hear who decided', async () => {
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const results = await Promise.all([
    click(copy, activityId, button('approve')),
    click(copy, activityId, button('approve')),
    click(copy, activityId, button('approve'), SECOND_APPROVER, { name: 'Bea' }),
  ]);
  expect(h.executor.calls).toHaveLength(1);
  const cards = results.filter((r) => r.body.type === 'application/vnd.microsoft.card.adaptive');
  const messages = results.filter((r) => r.body.type === 'application/vnd.microsoft.activity.message');
  expect(cards).toHaveLength(1);
  expect(messages).toHaveLength(2);
  const winner = (await h.store.getApproval(approval.id))!.decidedBy!;
  for (const m of messages) expect(m.body.value).toContain(`Already decided by ${winner}`);
  expect((await h.store.listAudit()).filter((a) => a.event.startsWith('approved'))).toHaveLength(1);
});

describe('refused, and nothing changes', () => {
  async function expectRefused(res: { status: number; body: any }, message: RegExp, approval: ApprovalRecord) {
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('application/vnd.microsoft.activity.message');
    expect(res.body.value).toMatch(message);
    expect(h.executor.calls).toEqual([]);
    expect(h.connector.updates()).toEqual([]);
    const stored = await h.store.getApproval(approval.id);
    expect(stored?.state).toBe('pending');
  }

  test('a person who is not an approver', async () => {
    const approval = await pendingApproval(h);
    const { copy, button, activityId } = await deliver(approval);
    await expectRefused(await click(copy, activityId, button('approve'), '99999999-0000-0000-0000-000000000000'), /not in AKS_NETGUARD_APPROVERS/, approval);
  });

  test('a click from another tenant, even by an approver id', async () => {
    const approval = await pendingApproval(h);
    const { copy, button, activityId } = await deliver(approval);
    await expectRefused(await click(copy, activityId, button('approve'), APPROVER, { tenant: '56653e9d-2158-46ee-90d7-675c39642038' }), /only from its own tenant/, approval);
  });

  test('a tampered payload: another approval id, an edited nonce, verb and action disagreeing', async () => {
    const approval = await pendingApproval(h);
    const { copy, button, activityId } = await deliver(approval);
    const b = button('reject');
    await expectRefused(await click(copy, activityId, { verb: b.verb, data: { ...b.data, nonce: `${b.data.nonce}x` } }), /does not match any request/, approval);
    await expectRefused(await click(copy, activityId, { verb: APPROVAL_VERBS.reject, data: { ...b.data, action: 'approve' } }), /altered payload/, approval);
    await expectRefused(await click(copy, activityId, { verb: b.verb, data: { ...b.data, approvalId: 'node-ssh-deny|/subscriptions/x' } }), /no approval request/, approval);
    await expectRefused(await click(copy, activityId, { verb: b.verb, data: 'approve' }), /not a NetGuard approval button/, approval);
  });

  test('an expired request (and the card then says it expired)', async () => {
    const approval = await pendingApproval(h, { requestedAt: new Date(Date.now() - 30 * 3600_000).toISOString(), expiresAt: new Date(Date.now() - 3600_000).toISOString() });
    const { copy, button, activityId } = await deliver(approval);
    const res = await click(copy, activityId, button('approve'));
    expect(res.body.value).toMatch(/expired/);
    expect(h.executor.calls).toEqual([]);
    expect((await h.store.getApproval(approval.id))?.state).toBe('expired');
    expect(h.connector.updates().length).toBe(2);
  });

  test('a replayed action: a card of an earlier request for the same finding', async () => {
    const first = await pendingApproval(h);
    const old = await deliver(first);
    await click(old.copy, old.activityId, old.button('reject'));
    expect((await h.store.getApproval(first.id))?.state).toBe('rejected');
    // The drift comes back: a new request for the same finding (same approval id), a new card.
    const second = await pendingApproval(h, { requestedAt: new Date(Date.now() + 1000).toISOString() });
    expect(second.id).toBe(first.id);
    await deliverNotice({ kind: 'approval-requested', approval: second }, deps());
    h.connector.calls.length = 0;
    await expectRefused(await click(old.copy, old.activityId, old.button('approve')), /earlier request/, second);
  });

  test('nobody configured as approver: the card says so and clicks are refused', async () => {
    await h.connector.stop();
    h = await startHarness(azurite, { approvers: [] });
    await h.post(channelMessage(h, 'subscribe', CHANNEL_A));
    await h.post(channelMessage(h, 'subscribe', CHANNEL_B));
    h.connector.calls.length = 0;
    const approval = await pendingApproval(h);
    const { copy, card, button, activityId } = await deliver(approval);
    expect(JSON.stringify(card)).toContain('Nobody can approve yet');
    await expectRefused(await click(copy, activityId, button('approve')), /Nobody can approve yet/, approval);
  });
});

test('the drift is gone before the click: approved, nothing applied, and the card says so', async () => {
  h.executor.result = 'gone';
  h.executor.detail = 'The add-on is already disabled; nothing to do.';
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const res = await click(copy, activityId, button('approve'));
  expect(JSON.stringify(res.body.value)).toContain('nothing applied, the drift is gone');
  expect(JSON.stringify(res.body.value)).toContain('already disabled');
  expect((await h.store.listAudit()).map((a) => a.event)).toContain('approved-gone');
});

test('the drift or the fix changed before the click: nothing applied, said on the card', async () => {
  h.executor.result = 'changed';
  h.executor.detail = 'The authorized ranges changed since the request.';
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const res = await click(copy, activityId, button('approve'));
  expect(JSON.stringify(res.body.value)).toContain('the drift or the fix changed');
});

test('reject: recorded with who and when, nothing applied, card updated', async () => {
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const res = await click(copy, activityId, button('reject'));
  expect(JSON.stringify(res.body.value)).toContain('Rejected by Rido');
  expect(h.executor.calls).toEqual([]);
  expect(await h.store.getApproval(approval.id)).toMatchObject({ state: 'rejected', decidedBy: `Rido (${APPROVER})` });
  expect((await h.store.listAudit())[0]).toMatchObject({ event: 'rejected', actor: `Rido (${APPROVER})` });
});

test('exempt for 7 days: an exemption with an expiry is recorded, nothing applied', async () => {
  const approval = await pendingApproval(h);
  const { copy, button, activityId } = await deliver(approval);
  const before = Date.now();
  const res = await click(copy, activityId, button('exempt'));
  expect(JSON.stringify(res.body.value)).toContain('Exempted for 7 days by Rido');
  expect(h.executor.calls).toEqual([]);
  const exemption = await h.tables.activeExemption('http-application-routing', approval.targetId.toUpperCase(), new Date());
  expect(exemption?.by).toBe(`Rido (${APPROVER})`);
  const until = Date.parse(exemption!.until);
  expect(until - before).toBeGreaterThanOrEqual(7 * 86_400_000 - 60_000);
  expect(await h.tables.activeExemption('http-application-routing', approval.targetId, new Date(until + 1))).toBeUndefined();
  expect((await h.store.getApproval(approval.id))?.state).toBe('exempted');
});
