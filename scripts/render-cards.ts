// Renders NetGuard's Teams cards with the official Adaptive Cards renderer (the `adaptivecards`
// devDependency, its UMD bundle) in headless Chromium and saves the pictures the README shows:
//   docs/img/approval-card.png    the approval request for narrowing the Allow at 100 on aks-allow-ssh-100
//   docs/img/approval-card-exact.png  the same card after "Show the exact prefix lists"
//   docs/img/digest-card.png      the daily digest after three days of the demo fleet
//   docs/img/remediated-card.png  the notice of a fix NetGuard made by itself
//
// The cards are real NetGuard output: the demo's drifted fleet in the local ARM sandbox, the real
// Engine with its state in Azurite, three simulated days (an injected clock), real digests.
//
// Run (Chromium is not a project dependency; on Debian: apt-get install chromium):
//   npx esbuild scripts/render-cards.ts --bundle --platform=node --log-level=warning --outfile=dist/render-cards.js && CHROMIUM=/usr/bin/chromium node dist/render-cards.js
// Options: OUT_DIR (default docs/img), SCALE (device pixel ratio, default 2), KEEP_HTML=1 keeps the
// standalone HTML pages next to the PNGs for a look in a browser. Nothing is downloaded.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ArmGateway } from '../shared/azure/arm';
import type { ArmManagedCluster } from '../shared/azure/armTypes';
import { lastSegment } from '../shared/azure/ids';
import { loadSettings } from '../shared/config';
import { Engine } from '../shared/engine/engine';
import type { Notice } from '../shared/notify/types';
import { ArmSandbox } from '../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, httpApplicationRoutingAddons, seedDriftedFleet } from '../testkit/fleet';
import { startAzurite } from '../testkit/azuriteProcess';
import { TableStateStore } from '../shared/store/tables';
import { buildApprovalCard, buildRemediationCard, type AdaptiveCard } from '../shared/teams/cards';
import { TeamsTables } from '../shared/teams/channels';
import { buildAndSendDigest } from '../shared/teams/digest';

const run = promisify(execFile);

/** The three sweeps run at the digest's hour on three consecutive days (fixed, so reruns give the same pictures). */
const DAYS = ['2026-11-24T07:00:00.000Z', '2026-11-25T07:00:00.000Z', '2026-11-26T07:00:00.000Z'];
/** Who changed things between the sweeps, as an Event Grid event's claims would name them. */
const SAM = 'sam.ops@contoso.com';
const DANA = 'dana.dev@contoso.com';
/** Two Entra object ids in AKS_NETGUARD_APPROVERS (made up; only their count shows on the card). */
const APPROVERS = '8f2b6c1e-4d3a-4b7e-9a51-2c6d0e9f1a73,1c7e9d24-6b0f-4e2a-8d13-5f4a7b2c9e60';

export interface SampleCards {
  approval: AdaptiveCard;
  approvalExact: AdaptiveCard;
  digest: AdaptiveCard;
  remediated: AdaptiveCard;
}

/** Runs the demo fleet through three days of NetGuard and returns the cards Teams would get. */
export async function sampleCardsFromDemoFleet(): Promise<SampleCards> {
  const sandbox = await ArmSandbox.start({ lroPolls: 1 });
  let azurite: Awaited<ReturnType<typeof startAzurite>> | undefined;
  try {
    azurite = await startAzurite();
    const fleet = seedDriftedFleet(sandbox);
    const settings = loadSettings({
      AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
      AzureWebJobsStorage: azurite.connectionString,
      AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24',
      AKS_NETGUARD_APPROVERS: APPROVERS,
      // Requests stay open for three days, so the digest's "oldest first" list shows real waits.
      AKS_NETGUARD_APPROVAL_TTL_HOURS: '72',
    });
    let now = new Date(DAYS[0]);
    const notices: Notice[] = [];
    const store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: 'cards' });
    const tables = TeamsTables.fromConnectionString(azurite.connectionString, 'cardsteams');
    const engine = new Engine({
      arm: new ArmGateway({ endpoint: settings.armEndpoint, pollIntervalMs: 20 }),
      settings,
      store,
      clock: () => now,
      notices: { enqueue: async (n) => void notices.push(n) },
      exemptions: tables,
    });
    const subscriptions = sandbox.listSubscriptions().map((s) => s.id);
    const clusterNamed = (name: string) => {
      const found = fleet.clusters.find((c) => lastSegment(c.clusterId) === name);
      if (!found) throw new Error(`The demo fleet has no cluster ${name}; update scripts/render-cards.ts.`);
      return found;
    };
    const digestAt = async (at: string) => {
      const report = await engine.sweep(subscriptions);
      const posted = await buildAndSendDigest(report, { store, tables, post: async () => ({ channels: 1, posted: 1 }) }, at);
      return posted.card;
    };

    // Day 1: the seeded fleet, swept and digested.
    await digestAt(DAYS[0]);
    // The approval card as the bot builds it when the request is first posted: the stored request,
    // its nonce, the first sighting of the drift.
    const allowSsh100 = clusterNamed('aks-allow-ssh-100').clusterId.toLowerCase();
    const pending = (await store.listApprovals('pending')).find((a) => a.clusterId.toLowerCase() === allowSsh100 && a.control === 'node-ssh-deny');
    if (!pending) throw new Error('No pending node-ssh-deny approval for aks-allow-ssh-100.');
    const finding = (await store.listFindings()).find(
      (f) => f.control === pending.control && f.targetId.toLowerCase() === pending.targetId.toLowerCase() && f.resourceId.toLowerCase() === allowSsh100,
    );
    const approval = buildApprovalCard(pending, {
      nonce: await tables.nonceFor(pending.id, pending.requestedAt),
      approvers: settings.approvers,
      driftSince: finding?.driftSince,
    });

    // Day 2: someone deletes NetGuard's Deny on aks-no-ssh-deny; the Event Grid event brings the fix at once.
    now = new Date(Date.parse(DAYS[1]) - 5 * 3600_000);
    const noSshNsg = clusterNamed('aks-no-ssh-deny').nsgIds[0];
    const deleteDeny = () => {
      if (!sandbox.remove(`${noSshNsg}/securityRules/${NETGUARD_SSH_RULE_NAME}`)) throw new Error(`NetGuard's rule was not on ${noSshNsg}.`);
    };
    deleteDeny();
    notices.length = 0;
    await engine.reconcile(noSshNsg, { changedBy: SAM });
    const fix = notices.find((n): n is Extract<Notice, { kind: 'remediated' }> => n.kind === 'remediated');
    if (!fix) throw new Error('Deleting the Deny on aks-no-ssh-deny brought no remediation notice.');
    now = new Date(DAYS[1]);
    await digestAt(DAYS[1]);

    // Day 3: the same Deny deleted again (it keeps drifting), and the HTTP routing add-on switched on.
    now = new Date(Date.parse(DAYS[2]) - 9 * 3600_000);
    deleteDeny();
    await engine.reconcile(noSshNsg, { changedBy: SAM });
    now = new Date(Date.parse(DAYS[2]) - 2 * 3600_000);
    const compliantId = clusterNamed('aks-compliant').clusterId;
    const compliant = sandbox.get<ArmManagedCluster>(compliantId)!;
    compliant.properties.addonProfiles = httpApplicationRoutingAddons();
    sandbox.put(compliant);
    await engine.reconcile(compliantId, { changedBy: DANA });
    now = new Date(DAYS[2]);
    const digest = await digestAt(DAYS[2]);

    return { approval, approvalExact: afterToggles(approval), digest, remediated: buildRemediationCard(fix) };
  } finally {
    await azurite?.stop();
    await sandbox.stop();
  }
}

/** The card as it looks after every Action.ToggleVisibility on it was clicked once. */
function afterToggles(card: AdaptiveCard): AdaptiveCard {
  const copy = structuredClone(card);
  const targets = new Set<string>();
  const walk = (node: unknown, visit: (n: Record<string, unknown>) => void): void => {
    if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
    else if (node && typeof node === 'object') {
      visit(node as Record<string, unknown>);
      Object.values(node).forEach((v) => walk(v, visit));
    }
  };
  walk(copy.body, (n) => {
    if (n.type === 'Action.ToggleVisibility') for (const t of (n.targetElements as string[]) ?? []) targets.add(t);
  });
  walk(copy.body, (n) => {
    if (typeof n.id === 'string' && targets.has(n.id)) n.isVisible = !(n.isVisible ?? true);
  });
  return copy;
}

// ---------------------------------------------------------------- the page

/**
 * A host config in the spirit of Teams' light theme (our own values): Segoe UI with fallbacks,
 * 14 px text, Teams' purple accent, soft tints for the emphasis/good/attention/warning containers.
 */
const TEAMS_LIGHT_HOST_CONFIG = {
  supportsInteractivity: true,
  fontFamily: "'Segoe UI', 'Segoe UI Web (West European)', 'Noto Sans', 'Helvetica Neue', 'Liberation Sans', Arial, sans-serif",
  fontTypes: {
    default: { fontFamily: "'Segoe UI', 'Noto Sans', 'Helvetica Neue', 'Liberation Sans', Arial, sans-serif", fontSizes: { small: 12, default: 14, medium: 16, large: 18, extraLarge: 24 }, fontWeights: { lighter: 300, default: 400, bolder: 600 } },
    monospace: { fontFamily: "Consolas, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, monospace", fontSizes: { small: 12, default: 13, medium: 15, large: 17, extraLarge: 22 }, fontWeights: { lighter: 300, default: 400, bolder: 600 } },
  },
  spacing: { small: 4, default: 8, medium: 16, large: 20, extraLarge: 24, padding: 16 },
  separator: { lineThickness: 1, lineColor: '#E0E0E0' },
  imageSizes: { small: 32, medium: 52, large: 100 },
  containerStyles: {
    default: teamsStyle('#FFFFFF'),
    emphasis: teamsStyle('#F0F0F0'),
    accent: teamsStyle('#E8EBFA'),
    good: teamsStyle('#E7F2DA'),
    attention: teamsStyle('#F9D6DB'),
    warning: teamsStyle('#FBF6D9'),
  },
  actions: {
    maxActions: 6,
    spacing: 'default',
    buttonSpacing: 8,
    showCard: { actionMode: 'inline', inlineTopMargin: 16 },
    actionsOrientation: 'horizontal',
    actionAlignment: 'left',
  },
  adaptiveCard: { allowCustomStyle: true },
  textBlock: { headingLevel: 2 },
  factSet: {
    title: { color: 'default', size: 'default', isSubtle: false, weight: 'bolder', wrap: true, maxWidth: 150 },
    value: { color: 'default', size: 'default', isSubtle: false, weight: 'default', wrap: true },
    spacing: 12,
  },
  table: { cellSpacing: 8 },
};

function teamsStyle(backgroundColor: string) {
  const color = (normal: string, subtle: string) => ({ default: normal, subtle });
  return {
    backgroundColor,
    foregroundColors: {
      default: color('#242424', '#616161'),
      dark: color('#000000', '#424242'),
      light: color('#FFFFFF', '#E0E0E0'),
      accent: color('#5B5FC7', '#6264A7'),
      good: color('#237B4B', '#3A8A5E'),
      warning: color('#835B00', '#9A6D00'),
      attention: color('#C4314B', '#D0566B'),
    },
  };
}

/** Extra styling for what the host config does not cover: the buttons and the message frame. */
const TEAMS_LIKE_CSS = `
html, body { margin: 0; padding: 0; background: #F5F5F5; }
#frame { padding: 16px; display: inline-block; }
#card { background: #FFFFFF; border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,0.14), 0 0 2px rgba(0,0,0,0.12); overflow: hidden; }
.ac-adaptiveCard:focus { outline: none; }
.ac-textBlock p { margin: 0; }
/* The renderer gives a TextBlock's first child width: 100%, so the list's indent must fit inside it. */
.ac-textBlock ul { margin: 0; padding-left: 20px; box-sizing: border-box; }
.ac-textBlock code { font-family: Consolas, 'DejaVu Sans Mono', monospace; font-size: 0.92em; background: #F0F0F0; padding: 0 3px; border-radius: 3px; }
a.ac-anchor:link, a.ac-anchor:visited, .ac-textBlock a { color: #5B5FC7; text-decoration: none; }
.ac-pushButton { font-family: 'Segoe UI', 'Noto Sans', 'Helvetica Neue', 'Liberation Sans', Arial, sans-serif; font-size: 14px; font-weight: 600;
  height: 32px; padding: 0 12px; border-radius: 4px; border: 1px solid #D1D1D1; background: #FFFFFF; color: #242424; flex: 0 1 auto !important; }
.ac-pushButton.style-positive { background: #5B5FC7; border-color: #5B5FC7; color: #FFFFFF; }
.ac-pushButton.style-destructive { color: #C4314B; border-color: #D1D1D1; background: #FFFFFF; }
`;

/**
 * The minimal Markdown Teams shows in TextBlocks (links, bold, italic, code, "- " lists, backslash
 * escapes), HTML-escaped first. The renderer calls it through AdaptiveCard.onProcessMarkdown; the
 * function's source is put into the page, so it must not close over anything.
 */
function teamsMarkdown(source: string): string {
  const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const escaped: string[] = [];
  const inline = (line: string): string => {
    // Backslash escapes become placeholders so the characters they protect stay literal.
    let s = line.replace(/\\([\\`*_{}[\]()#+\-.!<>|~])/g, (_m, ch: string) => `\u0000${escaped.push(ch) - 1}\u0000`);
    s = html(s);
    s = s.replace(/`([^`]+)`/g, '<code>$1</code>');
    s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>');
    s = s.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    s = s.replace(/(^|[\s(])[*_]([^*_]+)[*_](?=$|[\s).,:;])/g, '$1<em>$2</em>');
    // NUL brackets the placeholders above: a character no card text contains.
    // eslint-disable-next-line no-control-regex
    return s.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => html(escaped[Number(i)]));
  };
  const lines = source.split('\n');
  if (lines.every((l) => l.startsWith('- '))) return `<ul>${lines.map((l) => `<li>${inline(l.slice(2))}</li>`).join('')}</ul>`;
  return `<p>${lines.map(inline).join('<br>')}</p>`;
}

/** A standalone page: the official UMD bundle, its CSS, the host config, the card; it reports its height. */
function cardPage(card: AdaptiveCard, widthPx: number): string {
  const dist = path.dirname(require.resolve('adaptivecards/dist/adaptivecards.min.js', { paths: [process.cwd(), __dirname] }));
  const bundle = fs.readFileSync(path.join(dist, 'adaptivecards.min.js'), 'utf8');
  const css = fs.readFileSync(path.join(dist, 'adaptivecards.css'), 'utf8');
  const json = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>NetGuard card</title>
<style>${css}</style><style>${TEAMS_LIKE_CSS} #card { width: ${widthPx}px; }</style>
<script>${bundle.replace(/<\/script/gi, '<\\/script')}</script>
</head><body><div id="frame"><div id="card"></div></div>
<script>
const teamsMarkdown = ${teamsMarkdown.toString()};
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => { result.outputHtml = teamsMarkdown(text); result.didProcess = true; };
const card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig(${json(TEAMS_LIGHT_HOST_CONFIG)});
const context = new AdaptiveCards.SerializationContext(AdaptiveCards.Versions.v1_5);
card.parse(${json(card)}, context);
const problems = [];
for (let i = 0; i < context.eventCount; i++) { const e = context.getEventAt(i); problems.push(e.phase + ' ' + e.event + ': ' + e.message); }
document.getElementById('card').appendChild(card.render());
const frame = document.getElementById('frame').getBoundingClientRect();
document.body.setAttribute('data-size', Math.ceil(frame.width) + 'x' + Math.ceil(frame.height));
document.body.setAttribute('data-problems', JSON.stringify(problems));
</script></body></html>`;
}

// ---------------------------------------------------------------- Chromium

function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((c): c is string => !!c);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`No Chromium found (tried ${candidates.join(', ')}): install it (apt-get install chromium) or set CHROMIUM.`);
  return found;
}

async function chromium(args: string[]): Promise<string> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-chromium-'));
  try {
    const { stdout } = await run(
      chromiumPath(),
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
    );
    return stdout;
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** Two passes: the first lays the card out and reads its size, the second screenshots exactly that. */
async function screenshot(card: AdaptiveCard, widthPx: number, pngPath: string, scale: number, keepHtml: boolean): Promise<{ width: number; height: number }> {
  const htmlPath = keepHtml ? pngPath.replace(/\.png$/, '.html') : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-card-')), 'card.html');
  fs.writeFileSync(htmlPath, cardPage(card, widthPx));
  const url = `file://${htmlPath}`;
  const dom = await chromium(['--window-size=1400,4000', '--dump-dom', url]);
  const size = /data-size="(\d+)x(\d+)"/.exec(dom);
  if (!size) throw new Error(`The page did not render the card (${path.basename(pngPath)}); open ${htmlPath} in a browser to see why.`);
  const problems = /data-problems="([^"]*)"/.exec(dom)?.[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  if (problems && problems !== '[]') throw new Error(`The renderer reported problems for ${path.basename(pngPath)}: ${problems}`);
  const [width, height] = [Number(size[1]), Number(size[2])];
  await chromium([`--force-device-scale-factor=${scale}`, `--window-size=${width},${height}`, `--screenshot=${pngPath}`, url]);
  if (!keepHtml) fs.rmSync(path.dirname(htmlPath), { recursive: true, force: true });
  return { width, height };
}

async function main(): Promise<void> {
  const outDir = path.resolve(process.env.OUT_DIR ?? 'docs/img');
  const scale = Number(process.env.SCALE ?? '2');
  fs.mkdirSync(outDir, { recursive: true });
  process.stderr.write('Running the demo fleet through three days of NetGuard…\n');
  const cards = await sampleCardsFromDemoFleet();
  const shots: Array<[keyof SampleCards, string, number]> = [
    ['approval', 'approval-card.png', 620],
    ['approvalExact', 'approval-card-exact.png', 620],
    ['digest', 'digest-card.png', 660],
    ['remediated', 'remediated-card.png', 620],
  ];
  for (const [name, file, width] of shots) {
    const target = path.join(outDir, file);
    const size = await screenshot(cards[name], width, target, scale, process.env.KEEP_HTML === '1');
    process.stderr.write(`  ${path.relative(process.cwd(), target)}: ${size.width}x${size.height} CSS px at ${scale}x, ${Math.round(fs.statSync(target).size / 1024)} KB\n`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
