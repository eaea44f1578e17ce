// Effective mode of one control on one target, and exemptions (DESIGN.md "Modes, exemptions, identity").
import type { Settings } from '../config';
import type { Control, Judgement } from '../controls/types';
import { MODES, type ControlId, type Mode } from '../types';

/** Resource tag naming the controls NetGuard must leave alone: a comma list of control ids, or `*`. */
export const EXEMPT_TAG = 'aks-netguard-exempt';
/** Resource tag choosing the mode for every control judged on the resource. */
export const MODE_TAG = 'aks-netguard-mode';

/** Which rung of the precedence ladder decided the mode. */
export type ModeSource =
  | 'exemption'
  | 'cli-dry-run'
  | 'tag'
  | 'cli'
  | 'control-setting'
  | 'setting'
  | 'default';

export interface ModeInput {
  control: Pick<Control, 'id' | 'defaultMode'>;
  /** Its tagSources, strongest first (NSG before cluster). */
  judgement: Pick<Judgement, 'tagSources'>;
  settings: Pick<Settings, 'mode' | 'controlModes'>;
  /** CLI --mode. `report` is a dry run and beats every tag. */
  cliMode?: Mode;
  /** True when the CLI runs as a dry run (`--mode report`), whatever cliMode says. */
  cliDryRun?: boolean;
}

export interface ResolvedMode {
  /** `report` whenever the control is exempt: an exempt target is never changed. */
  mode: Mode;
  exempt: boolean;
  /** Sentences for the finding's detail (an unknown tag value, an exemption). */
  notes: string[];
  source: ModeSource;
}

type Tags = Record<string, string> | undefined;

/** A tag's value by name; ARM tag names are case-insensitive. */
export function tagValue(tags: Tags, name: string): string | undefined {
  if (!tags) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(tags)) {
    if (key.trim().toLowerCase() === wanted) return typeof value === 'string' ? value : String(value ?? '');
  }
  return undefined;
}

/** True when an `aks-netguard-exempt` value names this control (or `*`). */
export function exemptionCovers(value: string, control: ControlId): boolean {
  return value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .some((entry) => entry === '*' || entry === control);
}

export function resolveMode(input: ModeInput): ResolvedMode {
  const { control, judgement, settings } = input;
  const sources = judgement.tagSources ?? [];

  for (const tags of sources) {
    const exemption = tagValue(tags, EXEMPT_TAG);
    if (exemption !== undefined && exemptionCovers(exemption, control.id)) {
      return {
        mode: 'report',
        exempt: true,
        notes: [`Exempt by the tag ${EXEMPT_TAG}="${exemption.trim()}", so NetGuard leaves it unchanged.`],
        source: 'exemption',
      };
    }
  }

  if (input.cliDryRun || input.cliMode === 'report') return { mode: 'report', exempt: false, notes: [], source: 'cli-dry-run' };

  // The first source that carries the tag decides, even with a value NetGuard does not know.
  for (const tags of sources) {
    const raw = tagValue(tags, MODE_TAG);
    if (raw === undefined) continue;
    const value = raw.trim().toLowerCase();
    if ((MODES as readonly string[]).includes(value)) return { mode: value as Mode, exempt: false, notes: [], source: 'tag' };
    return {
      mode: 'report',
      exempt: false,
      notes: [`The tag ${MODE_TAG}="${raw}" is not a mode (${MODES.join(', ')}), so NetGuard treats it as report.`],
      source: 'tag',
    };
  }

  if (input.cliMode) return { mode: input.cliMode, exempt: false, notes: [], source: 'cli' };
  const perControl = settings.controlModes?.[control.id];
  if (perControl) return { mode: perControl, exempt: false, notes: [], source: 'control-setting' };
  if (settings.mode) return { mode: settings.mode, exempt: false, notes: [], source: 'setting' };
  return { mode: control.defaultMode, exempt: false, notes: [], source: 'default' };
}
