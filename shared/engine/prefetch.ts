// Reads an event is known to need, started before they are needed so that they overlap the ARM
// reads instead of waiting in turn after them. Only reads: every write keeps its place and order
// (the event claim before processing, the intent row before the ARM write).
import { idKey } from '../azure/ids';
import type { Settings } from '../config';
import type { StateStore } from '../store/types';
import type { ControlId } from '../types';
import type { AffectedResource } from './observe';

export function flapKey(control: ControlId, targetId: string): string {
  return `${control}|${idKey(targetId)}`;
}

/**
 * An event about an NSG or one of its rules concerns the controls that judge NSGs (those an NSG event
 * re-judges), on that NSG, and a drift there is decided by the flap guard (recent automatic fixes of
 * the NSG): that history is read while the NSG and the cached topology are. A failed read fails the
 * flap guard exactly as an awaited one would.
 */
export function prefetchFlapHistory(
  into: Map<string, Promise<Array<{ at: string; changedBy?: string }>>>,
  what: AffectedResource | undefined,
  controls: readonly ControlId[],
  store: StateStore | undefined,
  flap: Settings['flap'],
  now: Date,
): void {
  if (!store || what?.kind !== 'nsg') return;
  const since = new Date(now.getTime() - flap.windowMinutes * 60_000);
  for (const control of controls) {
    const read = store.recentRemediations(control, what.id, since);
    read.catch(() => undefined); // judged (and reported) where it is awaited, if it is
    into.set(flapKey(control, what.id), read);
  }
}
