// `npm run teams:package`: the Teams app package for THIS deployment, from appPackage/ and the azd
// environment (`azd env get-values`): the bot id is NetGuard's managed identity (the Azure Bot `azd up`
// created is registered to it), the valid domain is the Function App's host, and the Teams app id is a
// GUID made once and kept in the azd environment (NETGUARD_TEAMS_APP_ID), so a new package updates the
// same app in Teams instead of adding a second one. Writes .package/teams/ and .package/netguard-teams.zip
// (manifest.json, color.png, outline.png at the zip's root), ready for Teams' "Upload a custom app".
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_DIR, REPO_ROOT, writeZip } from './package';

export const TEAMS_ZIP = 'netguard-teams.zip';
export const TEAMS_APP_ID_VARIABLE = 'NETGUARD_TEAMS_APP_ID';
const FILES = ['manifest.json', 'color.png', 'outline.png'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses `azd env get-values` output: KEY="value" lines (values may be unquoted). */
export function parseEnvValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2].trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    out[m[1]] = value;
  }
  return out;
}

function azd(args: string[]): string {
  const r = spawnSync('azd', args, { encoding: 'utf8', shell: process.platform === 'win32' });
  if (r.error) throw new Error(`teams:package: azd is not installed or not on PATH (${r.error.message}).`);
  if (r.status !== 0) throw new Error(`teams:package: azd ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The manifest with every placeholder filled; throws when one is left or a value is missing. */
export function fillManifest(template: string, values: { teamsAppId: string; botId: string; host: string }): string {
  const filled = template
    .replace(/\$\{\{TEAMS_APP_ID\}\}/g, values.teamsAppId)
    .replace(/\$\{\{BOT_ID\}\}/g, values.botId)
    .replace(/\$\{\{FUNCTION_APP_HOST\}\}/g, values.host);
  const left = filled.match(/\$\{\{[A-Z_]+\}\}/g);
  if (left) throw new Error(`teams:package: appPackage/manifest.json has placeholders this script does not fill: ${[...new Set(left)].join(', ')}`);
  JSON.parse(filled); // still JSON
  return filled;
}

export interface TeamsPackage {
  zip: string;
  teamsAppId: string;
  botId: string;
}

export async function buildTeamsPackage(root = REPO_ROOT, outDir = PACKAGE_DIR): Promise<TeamsPackage> {
  const env = parseEnvValues(azd(['env', 'get-values']));
  const botId = env.NETGUARD_IDENTITY_CLIENT_ID ?? '';
  const host = env.NETGUARD_FUNCTION_APP_HOST ?? '';
  if (!GUID.test(botId) || !host) {
    throw new Error('teams:package: the azd environment has no NETGUARD_IDENTITY_CLIENT_ID / NETGUARD_FUNCTION_APP_HOST yet: run `azd up` first.');
  }
  let teamsAppId = env[TEAMS_APP_ID_VARIABLE] ?? '';
  if (!GUID.test(teamsAppId)) {
    teamsAppId = randomUUID();
    azd(['env', 'set', TEAMS_APP_ID_VARIABLE, teamsAppId]); // kept, so the next package updates the same Teams app
  }
  const dir = path.join(outDir, 'teams');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const template = fs.readFileSync(path.join(root, 'appPackage', 'manifest.json'), 'utf8');
  fs.writeFileSync(path.join(dir, 'manifest.json'), fillManifest(template, { teamsAppId, botId, host }));
  for (const icon of ['color.png', 'outline.png']) fs.copyFileSync(path.join(root, 'appPackage', icon), path.join(dir, icon));
  const zip = path.join(outDir, TEAMS_ZIP);
  await writeZip(dir, FILES, zip);
  return { zip, teamsAppId, botId };
}

if (require.main === module && /teams-package\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  buildTeamsPackage()
    .then((p) => {
      console.log(`Wrote ${path.relative(REPO_ROOT, p.zip)}: Teams app ${p.teamsAppId}, bot ${p.botId} (NetGuard's managed identity).`);
      console.log('Upload it in Teams: Apps > Manage your apps > Upload an app > Upload a custom app (or ask a Teams admin to publish it).');
    })
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
}
