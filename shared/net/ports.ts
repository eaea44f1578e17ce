// Port specs of NSG rules: "*", "22", "20-30", and the plural *PortRanges lists.

export interface PortRange {
  from: number;
  to: number;
}

export const MIN_PORT = 0;
export const MAX_PORT = 65535;

export class InvalidPortSpecError extends Error {
  constructor(readonly spec: string, why: string) {
    super(`"${spec}" is not a port, port range or *: ${why}`);
    this.name = 'InvalidPortSpecError';
  }
}

function parsePort(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new InvalidPortSpecError(spec, `"${text}" is not a number`);
  const n = Number(text);
  if (n < MIN_PORT || n > MAX_PORT) throw new InvalidPortSpecError(spec, `${n} is outside 0-65535`);
  return n;
}

/** One spec ("*", "22", "20-30"; a comma list is accepted too). Throws InvalidPortSpecError. */
export function parsePortSpec(spec: string): PortRange[] {
  if (typeof spec !== 'string') throw new InvalidPortSpecError(String(spec), 'not a string');
  const parts = spec.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new InvalidPortSpecError(spec, 'it is empty');
  return parts.map((part) => {
    if (part === '*') return { from: MIN_PORT, to: MAX_PORT };
    const dash = part.indexOf('-');
    if (dash < 0) {
      const port = parsePort(part, spec);
      return { from: port, to: port };
    }
    const from = parsePort(part.slice(0, dash).trim(), spec);
    const to = parsePort(part.slice(dash + 1).trim(), spec);
    if (from > to) throw new InvalidPortSpecError(spec, `${from} is above ${to}`);
    return { from, to };
  });
}

/**
 * The ranges of a rule side from its singular and plural fields together (ARM uses one or the other).
 * Unparsable specs are returned in `invalid` instead of throwing.
 */
export function portRangesOf(single: string | undefined, list: readonly string[] | undefined): { ranges: PortRange[]; invalid: string[] } {
  const specs = [...(single !== undefined && single !== '' ? [single] : []), ...(list ?? [])];
  const ranges: PortRange[] = [];
  const invalid: string[] = [];
  for (const spec of specs) {
    try {
      ranges.push(...parsePortSpec(spec));
    } catch {
      invalid.push(String(spec));
    }
  }
  return { ranges, invalid };
}

export function containsPort(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => r.from <= port && port <= r.to);
}

/** True when the ranges cover every port 0-65535. */
export function coversAllPorts(ranges: readonly PortRange[]): boolean {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  let next = MIN_PORT;
  for (const r of sorted) {
    if (r.from > next) return false;
    next = Math.max(next, r.to + 1);
  }
  return next > MAX_PORT;
}

/** The ranges without one port, merged and sorted. */
export function withoutPort(ranges: readonly PortRange[], port: number): PortRange[] {
  const out: PortRange[] = [];
  for (const r of ranges) {
    if (port < r.from || port > r.to) out.push({ ...r });
    else {
      if (r.from < port) out.push({ from: r.from, to: port - 1 });
      if (port < r.to) out.push({ from: port + 1, to: r.to });
    }
  }
  return mergePortRanges(out);
}

export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

/** "22", "20-30" or "*", the way ARM spells a port range. */
export function formatPortRange(r: PortRange): string {
  if (r.from === MIN_PORT && r.to === MAX_PORT) return '*';
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

/** The ports in both lists (each list any order; the result merged and sorted). */
export function intersectPortRanges(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  const x = mergePortRanges(a);
  const y = mergePortRanges(b);
  const out: PortRange[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const from = Math.max(x[i].from, y[j].from);
    const to = Math.min(x[i].to, y[j].to);
    if (from <= to) out.push({ from, to });
    if (x[i].to < y[j].to) i++;
    else j++;
  }
  return out;
}

/** The ports of `a` that are not in `b`, merged and sorted. */
export function subtractPortRanges(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  let rest = mergePortRanges(a);
  for (const cut of mergePortRanges(b)) {
    const next: PortRange[] = [];
    for (const r of rest) {
      if (cut.to < r.from || cut.from > r.to) next.push(r);
      else {
        if (r.from < cut.from) next.push({ from: r.from, to: cut.from - 1 });
        if (cut.to < r.to) next.push({ from: cut.to + 1, to: r.to });
      }
    }
    rest = next;
  }
  return rest;
}
