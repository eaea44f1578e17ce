import { loadSettings } from '../../shared/config';
import { apiAuthorizedRanges } from '../../shared/controls/apiAuthorizedRanges';
import { EXEMPT_TAG, MODE_TAG, resolveMode, type ModeInput } from '../../shared/engine/modes';
import type { Control } from '../../shared/controls/types';

// node-ssh-deny's own file belongs to another engineer; its id and default are the contract's.
const NODE_SSH: Pick<Control, 'id' | 'defaultMode'> = { id: 'node-ssh-deny', defaultMode: 'auto' };

type Tags = Record<string, string> | undefined;

function input(over: { tags?: Tags[]; env?: NodeJS.ProcessEnv; cliMode?: ModeInput['cliMode']; cliDryRun?: boolean; control?: ModeInput['control'] }): ModeInput {
  return {
    control: over.control ?? NODE_SSH,
    judgement: { tagSources: over.tags ?? [] },
    settings: loadSettings(over.env ?? {}),
    cliMode: over.cliMode,
    cliDryRun: over.cliDryRun,
  };
}

describe('resolveMode precedence, strongest first', () => {
  // Every rung below is set, one weaker than the next, so each test removes exactly the rungs above it.
  const env = { AKS_NETGUARD_MODE: 'approve', AKS_NETGUARD_MODE_NODE_SSH_DENY: 'report' };

  it('exemption beats even a dry run and a mode tag', () => {
    const r = resolveMode(input({ tags: [{ [EXEMPT_TAG]: 'node-ssh-deny', [MODE_TAG]: 'auto' }], env, cliMode: 'report' }));
    expect(r).toMatchObject({ exempt: true, mode: 'report', source: 'exemption' });
    expect(r.notes.join(' ')).toContain(EXEMPT_TAG);
  });

  it('CLI --mode report beats the resource tag', () => {
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'auto' }], env, cliMode: 'report' }))).toMatchObject({ mode: 'report', exempt: false, source: 'cli-dry-run' });
  });

  it('a dry run flag beats the resource tag whatever cliMode says', () => {
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'auto' }], env, cliMode: 'auto', cliDryRun: true })).mode).toBe('report');
  });

  it('the resource tag beats CLI --mode', () => {
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'auto' }], env, cliMode: 'approve' }))).toMatchObject({ mode: 'auto', source: 'tag' });
  });

  it('CLI --mode beats AKS_NETGUARD_MODE_<ID>', () => {
    expect(resolveMode(input({ env, cliMode: 'auto' }))).toMatchObject({ mode: 'auto', source: 'cli' });
  });

  it('AKS_NETGUARD_MODE_<ID> beats AKS_NETGUARD_MODE', () => {
    expect(resolveMode(input({ env }))).toMatchObject({ mode: 'report', source: 'control-setting' });
  });

  it('AKS_NETGUARD_MODE beats the control default', () => {
    expect(resolveMode(input({ env: { AKS_NETGUARD_MODE: 'approve' } }))).toMatchObject({ mode: 'approve', source: 'setting' });
  });

  it('the control default applies when nothing else is set', () => {
    expect(resolveMode(input({}))).toEqual({ mode: 'auto', exempt: false, notes: [], source: 'default' });
    expect(resolveMode(input({ control: apiAuthorizedRanges })).mode).toBe('approve');
  });

  it('a per-control setting only applies to its own control', () => {
    expect(resolveMode(input({ control: apiAuthorizedRanges, env })).mode).toBe('approve');
  });
});

describe('mode tag', () => {
  it('counts an unknown value as report and says so', () => {
    const r = resolveMode(input({ tags: [{ [MODE_TAG]: 'enforce' }], cliMode: 'auto' }));
    expect(r.mode).toBe('report');
    expect(r.exempt).toBe(false);
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(/aks-netguard-mode="enforce" is not a mode.*report/);
  });

  it('counts an empty value as report too', () => {
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: '' }], env: { AKS_NETGUARD_MODE: 'auto' } })).mode).toBe('report');
  });

  it('matches the tag name case-insensitively and tolerates case and blanks in the value', () => {
    expect(resolveMode(input({ tags: [{ 'AKS-NetGuard-Mode': ' Approve ' }] })).mode).toBe('approve');
  });

  it('takes the NSG tag over the cluster tag', () => {
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'report' }, { [MODE_TAG]: 'auto' }] })).mode).toBe('report');
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'auto' }, { [MODE_TAG]: 'report' }] })).mode).toBe('auto');
  });

  it('uses the cluster tag when the NSG has none (or no tags at all)', () => {
    expect(resolveMode(input({ tags: [undefined, { [MODE_TAG]: 'approve' }] })).mode).toBe('approve');
    expect(resolveMode(input({ tags: [{ owner: 'net' }, { [MODE_TAG]: 'approve' }] })).mode).toBe('approve');
  });

  it('lets an unknown NSG value win over a valid cluster value (as report)', () => {
    const r = resolveMode(input({ tags: [{ [MODE_TAG]: 'yes' }, { [MODE_TAG]: 'auto' }] }));
    expect(r.mode).toBe('report');
    expect(r.notes[0]).toContain('"yes"');
  });
});

describe('exemption tag', () => {
  it('exempts every control with *', () => {
    expect(resolveMode(input({ tags: [{ [EXEMPT_TAG]: '*' }] })).exempt).toBe(true);
    expect(resolveMode(input({ tags: [{ [EXEMPT_TAG]: '*' }], control: apiAuthorizedRanges })).exempt).toBe(true);
  });

  it('exempts only the controls in its list, with blanks and any case', () => {
    const tags = [{ [EXEMPT_TAG]: ' service-mesh ,  NODE-SSH-DENY ' }];
    expect(resolveMode(input({ tags })).exempt).toBe(true);
    const other = resolveMode(input({ tags, control: apiAuthorizedRanges }));
    expect(other).toMatchObject({ exempt: false, mode: 'approve', notes: [] });
  });

  it('does not exempt on a partial id or an empty value', () => {
    expect(resolveMode(input({ tags: [{ [EXEMPT_TAG]: 'node-ssh' }] })).exempt).toBe(false);
    expect(resolveMode(input({ tags: [{ [EXEMPT_TAG]: '' }] })).exempt).toBe(false);
  });

  it('matches the tag name case-insensitively', () => {
    expect(resolveMode(input({ tags: [{ 'Aks-NetGuard-Exempt': 'node-ssh-deny' }] })).exempt).toBe(true);
  });

  it('exempts from either tag source: the NSG or the cluster', () => {
    expect(resolveMode(input({ tags: [{ [EXEMPT_TAG]: '*' }, {}] })).exempt).toBe(true);
    expect(resolveMode(input({ tags: [{ [MODE_TAG]: 'auto' }, { [EXEMPT_TAG]: 'node-ssh-deny' }] })).exempt).toBe(true);
  });
});
