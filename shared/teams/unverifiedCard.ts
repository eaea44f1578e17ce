// The Teams notice for a cluster update NetGuard started but could not verify (the verify queue
// gave up): says so plainly, with what to check. Kept apart from cards.ts; same 1.5 element set.
import { lastSegment, portalUrl } from '../azure/ids';
import type { PlannedChange } from '../controls/types';
import type { Finding } from '../types';
import { CARD_VERSION, describeChange, escapeMarkdown, formatTime, type AdaptiveCard, type CardElement } from './cards';

export interface UnverifiedNoticeInput {
  finding: Finding;
  change: PlannedChange;
  startedAt: string;
  looks: number;
  changedBy?: string;
  at: string;
}

const text = (value: string, extra: Record<string, unknown> = {}): CardElement => ({ type: 'TextBlock', text: value, wrap: true, ...extra });

export function buildUnverifiedCard(notice: UnverifiedNoticeInput): AdaptiveCard {
  const { finding, change } = notice;
  const cluster = lastSegment(finding.resourceId);
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: CARD_VERSION,
    msteams: { width: 'Full' },
    body: [
      {
        type: 'Container',
        style: 'warning',
        bleed: true,
        items: [text(`NetGuard could not verify its fix: ${finding.control} on ${escapeMarkdown(cluster)}`, { weight: 'Bolder' })],
      },
      text(`Cluster: [${escapeMarkdown(cluster)}](${portalUrl(finding.resourceId)})`),
      {
        type: 'FactSet',
        facts: [
          { title: 'Update started', value: formatTime(notice.startedAt) },
          { title: 'Looked at', value: `${notice.looks} times, last at ${formatTime(notice.at)}` },
          { title: 'Drift caused by', value: notice.changedBy ?? 'unknown (no event claims for this change)' },
        ],
      },
      text(change.summary),
      ...describeChange(change).map((line) => text(line, { fontType: 'Monospace', size: 'Small', spacing: 'None' })),
      text(
        `What to check: the cluster's provisioning state and its activity log in the portal. If AKS is still updating it or the update failed, ` +
          `the portal says why. Once the cluster is Succeeded, the next sweep judges it again and repairs or asks again if the drift is still there. ` +
          `Until then NetGuard reports it as an error, not as fixed.`,
      ),
    ],
  };
}
