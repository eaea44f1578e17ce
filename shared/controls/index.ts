// The controls, in the order they are reported. Adding a control: one file, one line here, one test file
// (README "Adding a control"). What each reads, may change and needs granted is in its `needs`.
import { apiAuthorizedRanges } from './apiAuthorizedRanges';
import { egressLockdown } from './egressLockdown';
import { httpApplicationRouting } from './httpApplicationRouting';
import { instanceMetadata } from './instanceMetadata';
import { networkPolicy } from './networkPolicy';
import { nodeSshDeny } from './nodeSshDeny';
import { serviceMesh } from './serviceMesh';
import type { Control } from './types';
import type { ControlId } from '../types';

export const CONTROLS: readonly Control[] = [
  nodeSshDeny,
  apiAuthorizedRanges,
  httpApplicationRouting,
  instanceMetadata,
  networkPolicy,
  egressLockdown,
  serviceMesh,
];

export function controlById(id: ControlId): Control {
  const c = CONTROLS.find((x) => x.id === id);
  if (!c) throw new Error(`unknown control ${id}`);
  return c;
}
