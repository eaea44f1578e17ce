// A small reader for our own Bicep files: enough structure (params, modules and the keys of an object
// literal) for tests to check what a compiler would, since the Bicep CLI cannot be installed here.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const REPO = path.join(__dirname, '..', '..');
export const INFRA = path.join(REPO, 'infra');

export function bicepFiles(dir = INFRA): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return bicepFiles(full);
    return e.name.endsWith('.bicep') ? [full] : [];
  });
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

/** The text with comments blanked out (same length, so offsets still match). Strings are kept. */
export function withoutComments(text: string): string {
  let out = '';
  let i = 0;
  let inString = false;
  while (i < text.length) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (c === "'") inString = false;
      i++;
    } else if (c === "'") {
      inString = true;
      out += c;
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The text between the `{` at `open` and its matching `}` (strings and nesting respected). */
export function blockAt(code: string, open: number): string {
  if (code[open] !== '{') throw new Error(`expected { at ${open}`);
  let depth = 0;
  let inString = false;
  for (let i = open; i < code.length; i++) {
    const c = code[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === "'") inString = false;
      continue;
    }
    if (c === "'") inString = true;
    else if (c === '{' || c === '[' || c === '(') depth++;
    else if (c === '}' || c === ']' || c === ')') {
      depth--;
      if (depth === 0) return code.slice(open + 1, i);
    }
  }
  throw new Error('unbalanced braces');
}

/** Keys of an object literal's body, top level only: `name: value` at nesting depth 0. */
export function topLevelKeys(body: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let inString = false;
  let lineStart = true;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === "'") inString = false;
      continue;
    }
    if (depth === 0 && lineStart) {
      const m = /^\s*('([^']+)'|[A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(body.slice(i));
      if (m) {
        keys.push(m[2] ?? m[1]);
        i += m[0].length - 1;
        lineStart = false;
        continue;
      }
    }
    if (c === "'") inString = true;
    else if (c === '{' || c === '[' || c === '(') depth++;
    else if (c === '}' || c === ']' || c === ')') depth--;
    lineStart = c === '\n' || c === ',' ? true : lineStart && /\s/.test(c);
  }
  return keys;
}

/** The body of the object literal that follows `key:` inside `code`, starting at `from`. */
export function objectAfter(code: string, key: string, from = 0): string {
  const re = new RegExp(`\\b${key}\\s*:\\s*\\{`, 'g');
  re.lastIndex = from;
  const m = re.exec(code);
  if (!m) throw new Error(`no ${key}: { … } after offset ${from}`);
  return blockAt(code, m.index + m[0].length - 1);
}

export interface BicepParam {
  name: string;
  type: string;
  hasDefault: boolean;
}

export function paramsOf(code: string): BicepParam[] {
  return [...code.matchAll(/^param\s+([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s*(=)?/gm)].map((m) => ({
    name: m[1],
    type: m[2],
    hasDefault: m[3] === '=',
  }));
}

export interface BicepModule {
  symbol: string;
  /** Path of the module file, resolved. */
  file: string;
  /** Keys of its params: { … } block. */
  params: string[];
}

export function modulesOf(file: string): BicepModule[] {
  const code = withoutComments(readText(file));
  return [...code.matchAll(/^module\s+([A-Za-z_][A-Za-z0-9_]*)\s+'([^']+)'\s*=/gm)].map((m) => {
    const declaration = m.index ?? 0;
    return {
      symbol: m[1],
      file: path.resolve(path.dirname(file), m[2]),
      params: topLevelKeys(objectAfter(code, 'params', declaration)),
    };
  });
}

/** The body of `resource <symbol> '<type>@…' … = {`. */
export function resourceBody(code: string, symbol: string): string {
  const m = new RegExp(`^resource\\s+${symbol}\\s+'[^']+'[^=]*=[^{]*\\{`, 'm').exec(code);
  if (!m) throw new Error(`no resource ${symbol}`);
  return blockAt(code, (m.index ?? 0) + m[0].length - 1);
}
