// Reads the two things NetGuard takes from a kubeconfig: the API server address and its CA.
// The credentials in it (client certificates of local accounts, kubelogin exec plugins) are never
// used: NetGuard authenticates with its own Entra token.
//
// AKS answers listClusterUserCredential with block-style YAML as Go's yaml writer emits it (maps,
// "- " lists, plain or quoted scalars). This reads that shape (and JSON, which is YAML too) rather
// than pulling a YAML library into the function bundle for two fields.

export interface KubeconfigTarget {
  /** The cluster entry's name. */
  name: string;
  server: string;
  /** PEM text of the API server's CA, when the kubeconfig carries one. */
  caPem?: string;
  /** True when the kubeconfig asks to skip TLS verification (never honoured against a real token). */
  insecureSkipTlsVerify?: boolean;
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

type Node = string | Node[] | { [key: string]: Node };

interface Line {
  indent: number;
  text: string;
}

function unquote(raw: string): string {
  const v = raw.trim();
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return JSON.parse(v) as string;
  if (v.startsWith("'") && v.endsWith("'") && v.length >= 2) return v.slice(1, -1).replace(/''/g, "'");
  return v;
}

/** Splits `key: value` at the first colon followed by a space or the end (URLs keep their colons). */
function splitKey(text: string): [string, string] | undefined {
  const m = /^("[^"]*"|'[^']*'|[^:'"][^:]*?):(?:\s+(.*))?$/.exec(text);
  return m ? [unquote(m[1]), m[2] ?? ''] : undefined;
}

function parseBlock(lines: Line[], start: number, indent: number): [Node, number] {
  if (start >= lines.length) return ['', start];
  const first = lines[start];
  if (first.text.startsWith('- ') || first.text === '-') {
    const list: Node[] = [];
    let i = start;
    while (i < lines.length && lines[i].indent === indent && (lines[i].text.startsWith('- ') || lines[i].text === '-')) {
      const rest = lines[i].text.slice(1).trimStart();
      if (!rest) {
        const [child, next] = parseBlock(lines, i + 1, lines[i + 1]?.indent ?? indent + 2);
        list.push(child);
        i = next;
        continue;
      }
      // "- key: value" opens a map whose further keys sit at the indent of "key".
      const itemIndent = indent + (lines[i].text.length - rest.length);
      const synthetic: Line[] = [{ indent: itemIndent, text: rest }];
      let j = i + 1;
      while (j < lines.length && lines[j].indent >= itemIndent) synthetic.push(lines[j++]);
      if (splitKey(rest)) list.push(parseBlock(synthetic, 0, itemIndent)[0]);
      else list.push(unquote(rest));
      i = j;
    }
    return [list, i];
  }
  const map: { [key: string]: Node } = {};
  let i = start;
  while (i < lines.length && lines[i].indent === indent) {
    const kv = splitKey(lines[i].text);
    if (!kv) throw new KubeconfigError(`unexpected line "${lines[i].text}"`);
    const [key, value] = kv;
    if (value.trim() !== '') {
      map[key] = value.trim() === '[]' ? [] : value.trim() === '{}' ? {} : unquote(value);
      i++;
      continue;
    }
    const next = lines[i + 1];
    // A list may sit at the same indent as its key ("clusters:\n- cluster:").
    if (next && (next.indent > indent || (next.indent === indent && next.text.startsWith('-')))) {
      const [child, after] = parseBlock(lines, i + 1, next.indent);
      map[key] = child;
      i = after;
    } else {
      map[key] = '';
      i++;
    }
  }
  return [map, i];
}

function parseYamlSubset(text: string): Node {
  const lines: Line[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*(#.*)?$/.test(raw) || raw.trim() === '---') continue;
    const indent = raw.length - raw.trimStart().length;
    lines.push({ indent, text: raw.trim() });
  }
  if (lines.length === 0) throw new KubeconfigError('the kubeconfig is empty');
  const [node, end] = parseBlock(lines, 0, lines[0].indent);
  if (end !== lines.length) throw new KubeconfigError(`unexpected line "${lines[end].text}"`);
  return node;
}

const isMap = (n: unknown): n is { [key: string]: Node } => !!n && typeof n === 'object' && !Array.isArray(n);

/** The cluster the current context points at (or the only cluster). Throws KubeconfigError. */
export function readKubeconfig(text: string): KubeconfigTarget {
  let doc: unknown;
  const trimmed = text.trim();
  try {
    doc = trimmed.startsWith('{') ? JSON.parse(trimmed) : parseYamlSubset(text);
  } catch (err) {
    throw err instanceof KubeconfigError ? err : new KubeconfigError(`the kubeconfig does not parse: ${(err as Error).message}`);
  }
  if (!isMap(doc)) throw new KubeconfigError('the kubeconfig is not a map');
  const clusters = Array.isArray(doc.clusters) ? doc.clusters.filter(isMap) : [];
  if (clusters.length === 0) throw new KubeconfigError('the kubeconfig names no cluster');
  let wanted: string | undefined;
  const current = typeof doc['current-context'] === 'string' ? doc['current-context'] : undefined;
  if (current && Array.isArray(doc.contexts)) {
    const ctx = doc.contexts.filter(isMap).find((c) => c.name === current);
    if (ctx && isMap(ctx.context) && typeof ctx.context.cluster === 'string') wanted = ctx.context.cluster;
  }
  const entry = (wanted ? clusters.find((c) => c.name === wanted) : undefined) ?? clusters[0];
  const cluster = isMap(entry.cluster) ? entry.cluster : undefined;
  const server = typeof cluster?.server === 'string' ? cluster.server.trim() : '';
  if (!server) throw new KubeconfigError('the kubeconfig names no API server');
  const caData = typeof cluster?.['certificate-authority-data'] === 'string' ? cluster['certificate-authority-data'] : undefined;
  return {
    name: typeof entry.name === 'string' ? entry.name : '',
    server,
    caPem: caData ? Buffer.from(caData, 'base64').toString('utf8') : undefined,
    insecureSkipTlsVerify: cluster?.['insecure-skip-tls-verify'] === 'true' || (cluster?.['insecure-skip-tls-verify'] as unknown) === true,
  };
}
