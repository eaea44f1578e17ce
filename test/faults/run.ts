// `npm run test:faults [-- --seeds N] [--first-seed S] [--rate 0.2] [--copies 2] [--scenario sweep,events] [--bound-seconds 180]`
// Runs the fault and abuse scenarios over several seeds, prints a table and one JSON line with the
// counts, and exits 1 when any bad count is above 0 (2 on bad usage).
import fs from 'node:fs';
import { BAD_COUNTS, runSeed, total, zeroCounts, type Counts, type ScenarioResult } from './scenarios';
import { bundleCli } from './world';

interface Args {
  seeds: number;
  firstSeed: number;
  rate: number;
  copies: number;
  boundSeconds: number;
  only?: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 5, firstSeed: 1, rate: 0.2, copies: 2, boundSeconds: 180 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    const num = (name: string, min: number) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min) throw new Error(`${name}: expected a number ≥ ${min}`);
      return v;
    };
    switch (flag) {
      case '--seeds':
        args.seeds = Math.floor(num('--seeds', 1));
        break;
      case '--first-seed':
        args.firstSeed = Math.floor(num('--first-seed', 0));
        break;
      case '--rate':
        args.rate = num('--rate', 0);
        break;
      case '--copies':
        args.copies = Math.floor(num('--copies', 1));
        break;
      case '--bound-seconds':
        args.boundSeconds = num('--bound-seconds', 1);
        break;
      case '--scenario':
        args.only = String(value()).split(',').filter(Boolean);
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return args;
}

const COLUMNS: Array<keyof Counts> = ['driftsSeeded', 'driftsFixed', ...BAD_COUNTS];

function table(results: ScenarioResult[], sum: Counts): string {
  const header = ['seed', 'scenario', ...COLUMNS, 'seconds'];
  const rows = results.map((r) => [String(r.seed), r.scenario, ...COLUMNS.map((c) => String(r.counts[c])), r.seconds.toFixed(0)]);
  rows.push(['all', '', ...COLUMNS.map((c) => String(sum[c])), results.reduce((a, r) => a + r.seconds, 0).toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`test:faults: ${(e as Error).message}\n`);
    return 2;
  }
  const cli = await bundleCli('run');
  const results: ScenarioResult[] = [];
  try {
    for (let seed = args.firstSeed; seed < args.firstSeed + args.seeds; seed++) {
      process.stderr.write(`seed ${seed}…\n`);
      results.push(
        ...(await runSeed({ seed, cli, copies: args.copies, rate: args.rate, hungBoundMs: args.boundSeconds * 1000, only: args.only, log: (l) => process.stderr.write(`  ${l}\n`) })),
      );
    }
  } finally {
    fs.rmSync(cli, { force: true });
  }
  const sum = results.length ? total(results) : zeroCounts();
  for (const r of results) for (const n of r.notes) process.stdout.write(`seed ${r.seed} ${r.scenario}: ${n}\n`);
  process.stdout.write(`\n${table(results, sum)}\n\n`);
  const bad = BAD_COUNTS.filter((k) => sum[k] > 0);
  process.stdout.write(`${JSON.stringify({ faults: { seeds: args.seeds, firstSeed: args.firstSeed, rate: args.rate, ...sum }, bad })}\n`);
  return bad.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`test:faults: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
