// Which folder may import which: read from the sources' import statements, so a new import that
// breaks a rule fails here with the file that made it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

/** Every .ts file under a folder, with its relative imports resolved to repository paths. */
function importsUnder(folder: string): Array<{ file: string; target: string }> {
  const out: Array<{ file: string; target: string }> = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts')) {
        const source = readFileSync(path.join(ROOT, rel), 'utf8');
        for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
          out.push({ file: rel, target: path.posix.normalize(path.posix.join(dir, m[1])) });
        }
        for (const m of source.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
          out.push({ file: rel, target: path.posix.normalize(path.posix.join(dir, m[1])) });
        }
      }
    }
  };
  walk(folder);
  return out;
}

test('notify does not import the Teams code (teams imports notify, not the other way round)', () => {
  expect(importsUnder('shared/notify').filter((i) => i.target.startsWith('shared/teams/'))).toEqual([]);
});

test('the library and the functions do not import the test kit; only the CLI demo does', () => {
  const offenders = [...importsUnder('shared'), ...importsUnder('functions')].filter((i) => i.target.startsWith('testkit/') && i.file !== 'shared/cli/demo.ts');
  expect(offenders).toEqual([]);
  expect(importsUnder('shared/cli').some((i) => i.file === 'shared/cli/demo.ts' && i.target.startsWith('testkit/'))).toBe(true);
});
