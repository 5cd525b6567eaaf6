// Retention, pure: which snapshots a policy keeps (restic's rules). keep-last N keeps the newest
// N; keep-hourly/daily/weekly/monthly/yearly N keeps, newest first, the newest snapshot of each
// of the last N hours/days/ISO weeks/months/years that have one. A snapshot kept by any rule is
// kept. Times are UTC. An empty policy keeps everything (prune refuses it anyway).

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface Dated {
  id: string;
  time: string;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO 8601 week: the year and week of the Thursday of t's week. */
function isoWeek(t: Date): string {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  d.setUTCDate(d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7));
  const jan4 = new Date(Date.UTC(d.getUTCFullYear(), 0, 4));
  const week = 1 + Math.round(((d.getTime() - jan4.getTime()) / 86400000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
  return `${d.getUTCFullYear()}-W${pad(week)}`;
}

const BUCKETS: [keyof RetentionPolicy, (t: Date) => string][] = [
  ['hourly', (t) => t.toISOString().slice(0, 13)],
  ['daily', (t) => t.toISOString().slice(0, 10)],
  ['weekly', isoWeek],
  ['monthly', (t) => t.toISOString().slice(0, 7)],
  ['yearly', (t) => t.toISOString().slice(0, 4)],
];

export function isEmptyPolicy(p: RetentionPolicy): boolean {
  return Object.values(p).every((n) => n === undefined || n === 0);
}

/** The snapshots to keep and to remove, each list newest first. */
export function applyRetention<T extends Dated>(snapshots: T[], policy: RetentionPolicy): { keep: T[]; remove: T[] } {
  for (const [name, n] of Object.entries(policy)) {
    if (n !== undefined && !(Number.isInteger(n) && n >= 0))
      throw new RangeError(`keep-${name} must be a whole number, got ${n}`);
  }
  const newest = [...snapshots].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.id < b.id ? 1 : -1));
  if (isEmptyPolicy(policy)) return { keep: newest, remove: [] };
  const kept = new Set<T>(newest.slice(0, policy.last ?? 0));
  for (const [rule, bucketOf] of BUCKETS) {
    const n = policy[rule] ?? 0;
    const seen = new Set<string>();
    for (const s of newest) {
      if (seen.size >= n) break;
      const b = bucketOf(new Date(s.time));
      if (seen.has(b)) continue;
      seen.add(b);
      kept.add(s);
    }
  }
  return { keep: newest.filter((s) => kept.has(s)), remove: newest.filter((s) => !kept.has(s)) };
}
