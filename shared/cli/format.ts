// The readable report: grouped by cluster, drifted clusters first, drift before compliance.
import { lastSegment } from '../azure/ids';
import { controlById } from '../controls/index';
import type { Finding, RunReport } from '../types';

const STATUS_LABEL: Record<Finding['status'], string> = { drift: 'DRIFT', error: 'ERROR', exempt: 'exempt', compliant: 'ok' };
const STATUS_ORDER: Record<Finding['status'], number> = { error: 0, drift: 1, exempt: 2, compliant: 3 };

export function formatReport(report: RunReport): string {
  const byCluster = new Map<string, Finding[]>();
  for (const f of report.findings) {
    const key = f.resourceId.toLowerCase();
    if (!byCluster.has(key)) byCluster.set(key, []);
    byCluster.get(key)!.push(f);
  }
  const weight = (fs: Finding[]) => Math.min(...fs.map((f) => STATUS_ORDER[f.status]));
  const groups = [...byCluster.values()].sort((a, b) => weight(a) - weight(b) || a[0].resourceId.localeCompare(b[0].resourceId));

  const lines: string[] = [];
  for (const findings of groups) {
    const id = findings[0].resourceId;
    lines.push(`${lastSegment(id)}  (${id})`);
    const sorted = [...findings].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status]);
    for (const f of sorted) {
      const target = f.targetId.toLowerCase() === f.resourceId.toLowerCase() ? '' : ` [${lastSegment(f.targetId)}]`;
      const severity = safeSeverity(f);
      lines.push(`  ${STATUS_LABEL[f.status].padEnd(6)} ${f.control.padEnd(24)} ${f.action.padEnd(18)} ${severity}${target}`);
      lines.push(`         ${f.detail}`);
    }
    lines.push('');
  }
  const s = report.summary;
  // Clusters counted as clusters and findings as findings (one cluster can have several), as the digest does.
  const clustersWithDrift = groups.filter((fs) => fs.some((f) => f.status === 'drift')).length;
  lines.push(
    `${s.resources} cluster(s) judged, ${clustersWithDrift} with drift. ${s.drift} finding(s) drifted (${s.remediated} remediated, ${s.approvalRequested} waiting for approval), ${s.exempt} finding(s) exempt, ${s.errors} error(s).`,
  );
  return lines.join('\n') + '\n';
}

function safeSeverity(f: Finding): string {
  try {
    return controlById(f.control).severity === 'enforced' ? 'enforced' : 'advisory';
  } catch {
    return '';
  }
}

/** Exit status 3 under --fail-on-drift: an enforced control drifted (or failed) and was not remediated. */
export function hasUnremediatedEnforcedDrift(report: RunReport): boolean {
  return report.findings.some(
    (f) => (f.status === 'drift' || f.status === 'error') && f.action !== 'remediated' && safeSeverity(f) === 'enforced',
  );
}
