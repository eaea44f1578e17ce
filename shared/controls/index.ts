// The controls, in the order they are reported. Adding a control: one file, one line here, one test file.
import { apiAuthorizedRanges } from './apiAuthorizedRanges';
import { egressLockdown } from './egressLockdown';
import { httpApplicationRouting } from './httpApplicationRouting';
import { networkPolicy } from './networkPolicy';
import { nodeSshDeny } from './nodeSshDeny';
import { serviceMesh } from './serviceMesh';
import type { Control } from './types';
import type { ControlId } from '../types';

export const CONTROLS: readonly Control[] = [
  nodeSshDeny,
  apiAuthorizedRanges,
  httpApplicationRouting,
  networkPolicy,
  egressLockdown,
  serviceMesh,
];

export function controlById(id: ControlId): Control {
  const c = CONTROLS.find((x) => x.id === id);
  if (!c) throw new Error(`unknown control ${id}`);
  return c;
}
