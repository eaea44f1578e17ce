// The fixed-seed slice of `npm run test:faults` inside `npm test`: one seed, one copy of the drifted
// fleet, every scenario (sweeps under ARM faults and an Azurite outage; events delivered three times
// at once with hostile input; approvals and forged card actions with the connector down), and every
// bad count must be 0.
//
// Every bad count is a safety invariant of ../shared/DESIGN.md; do not loosen the expectation. On the
// code before issue 9's fixes it failed with the list of what was seen (a widening write from the
// broadened-deny repair, hung runs from stalled ARM requests, out-of-scope calls, abuse accepted by
// serve and handle-event, fixes without a `remediated` report or audit row).
import fs from 'node:fs';
import { BAD_COUNTS, runSeed, type ScenarioResult } from './scenarios';
import { bundleCli } from './world';

const SEED = 7;
// Generous on purpose: it only decides when a run counts as hung (a bound, not a timing assertion).
const HUNG_BOUND_MS = 120_000;
jest.setTimeout(30 * 60_000);

let cli: string;
let results: ScenarioResult[] = [];

beforeAll(async () => {
  cli = await bundleCli('slice');
  results = await runSeed({ seed: SEED, cli, copies: 1, rate: 0.2, hungBoundMs: HUNG_BOUND_MS });
});
afterAll(() => {
  if (cli) fs.rmSync(cli, { force: true });
});

test.each(['sweep', 'events', 'approvals'])(`seed ${SEED}, %s: every bad count is 0`, (scenario) => {
  const r = results.find((x) => x.scenario === scenario);
  expect(r).toBeDefined();
  const bad = Object.fromEntries(BAD_COUNTS.map((k) => [k, r!.counts[k]]));
  // The notes say what each non-zero count saw, so a failure here reads as a bug report.
  expect({ bad, notes: r!.notes }).toEqual({ bad: Object.fromEntries(BAD_COUNTS.map((k) => [k, 0])), notes: [] });
  // The scenario did exercise something: there were drifts for NetGuard to fix by itself (the
  // approvals scenario leaves its drifts to a person and counts none).
  if (scenario !== 'approvals') expect(r!.counts.driftsSeeded).toBeGreaterThan(0);
});
