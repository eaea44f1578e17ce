// What `azd deploy` picks up, read from the files azd reads (no build): azure.yaml's service settings
// and the ignore files. azd (host: function, language: ts) runs `npm run package`, then copies the
// service's `dist` folder, filtered by the .funcignore found IN that folder, and zips it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { APP_FUNCIGNORE, APP_MAIN, PACKAGE_APP, PACKAGE_DIR, REPO_ROOT } from '../../scripts/package';

interface AzureYaml {
  services: Record<string, { project?: string; language?: string; host?: string; dist?: string; remoteBuild?: boolean }>;
  hooks?: Record<string, unknown>;
}

const azureYaml = parse(readFileSync(path.join(REPO_ROOT, 'azure.yaml'), 'utf8')) as AzureYaml;
const repoPkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; main: string };

/** gitignore-style test for the simple patterns an ignore file of ours may hold (`*.ext`, `name`, `dir/`). */
function ignoredBy(ignoreFile: string, relative: string): boolean {
  const segments = relative.split('/');
  return ignoreFile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .some((pattern) => {
      const dirOnly = pattern.endsWith('/');
      const glob = dirOnly ? pattern.slice(0, -1) : pattern;
      const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
      // A pattern without a slash matches a name at any depth; a directory pattern matches a parent folder.
      return segments.some((s, i) => re.test(s) && (!dirOnly || i < segments.length - 1));
    });
}

describe('azd deploys the package npm run package builds', () => {
  const [name, service] = Object.entries(azureYaml.services)[0];

  it('has one Function App service, in TypeScript, from the repository root', () => {
    expect(Object.keys(azureYaml.services)).toEqual([name]);
    expect(service.host).toBe('function');
    expect(service.language).toBe('ts'); // azd's npm framework: npm install, npm run build, npm run package
    expect(service.project).toBe('.');
  });

  it("points the service's dist at the package folder, with no remote build", () => {
    expect(service.dist).toBe(PACKAGE_APP);
    expect(path.join(REPO_ROOT, service.dist!)).toBe(path.join(PACKAGE_DIR, 'app'));
    expect(service.remoteBuild).toBe(false);
  });

  it('has the package script azd runs before it copies dist, and it is scripts/package.ts', () => {
    expect(repoPkg.scripts.package).toMatch(/esbuild scripts\/package\.ts .*&& node \S+package\.js$/);
  });

  it("keeps everything the app needs in the package folder's .funcignore (azd honours the one in dist)", () => {
    for (const file of ['host.json', 'package.json', 'dist/functions/onResourceEvent.js', 'dist/handlers/onResourceEvent.mjs', 'dist/handlers/chunks/chunk-ABC.mjs', 'node_modules/@azure/functions/package.json', 'node_modules/@azure/monitor-opentelemetry/index.js']) {
      expect({ file, ignored: ignoredBy(APP_FUNCIGNORE, file) }).toEqual({ file, ignored: false });
    }
    expect(ignoredBy(APP_FUNCIGNORE, 'aks-netguard.zip')).toBe(true); // the matcher does match
    expect(APP_MAIN).toBe('dist/functions/*.js');
  });

  it('ignores everything at the repository root, so the sources cannot be published by mistake', () => {
    const rootIgnore = readFileSync(path.join(REPO_ROOT, '.funcignore'), 'utf8');
    for (const file of ['package.json', 'functions/onResourceEvent.ts', 'dist/functions/onResourceEvent.js', 'node_modules/jest/package.json', 'test/infra/deploy.test.ts']) {
      expect({ file, ignored: ignoredBy(rootIgnore, file) }).toEqual({ file, ignored: true });
    }
    expect(readFileSync(path.join(REPO_ROOT, '.gitignore'), 'utf8')).toMatch(/^\.package\/$/m);
  });
});
