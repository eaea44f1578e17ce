// Teams side of notice delivery: the NoticeChannels that shared/notify/queueSink.ts deliverNotice uses.
import type { NoticeChannels } from '../notify/queueSink';
import type { StateStore } from '../store/types';
import type { NetGuardBot } from './bot';
import type { TeamsTables } from './channels';
import { buildUnverifiedCard } from './unverifiedCard';
import { buildRemediationCard, type AdaptiveCard } from './cards';
import { buildAndSendDigest } from './digest';

export function teamsNoticeChannels(bot: NetGuardBot, store: StateStore, tables: TeamsTables): NoticeChannels<AdaptiveCard> {
  const post = (key: string, card: Parameters<NetGuardBot['postToSubscribed']>[1]) => bot.postToSubscribed(key, card);
  return {
    post,
    approvalCard: (approval) => bot.approvalCard(approval),
    remediationCard: (notice) => buildRemediationCard(notice),
    unverifiedCard: (notice) => buildUnverifiedCard(notice),
    digest: async (report, at) => {
      const { channels, posted } = await buildAndSendDigest(report, { store, tables, post }, at);
      return { channels, posted };
    },
  };
}
