// The configuration file (JSON): the repository, and tiers of data, each with its sources,
// excludes and retention, after the seed's classification (scratch never, home, project,
// archive). Flags override the environment (STRIPEMOVER_REPO), which overrides the file; the
// file is --config, else STRIPEMOVER_CONFIG, else none. An example: examples/backup-tiers.json.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Filter } from '../filter/index.js';
import type { RetentionPolicy } from './retention.js';

export interface TierConfig {
  sources: string[];
  /** false: never backed up (scratch). */
  backup?: boolean;
  exclude?: string[];
  oneFileSystem?: boolean;
  retention?: RetentionPolicy;
}

export interface ConfigFile {
  repository?: string;
  tiers?: Record<string, TierConfig>;
}

export interface BackupJob {
  source: string;
  tags: string[];
  filter?: Filter;
  oneFileSystem?: boolean;
}

export interface BackupConfig {
  repository?: string;
  /** What to back up: the source given, the tier's sources, or every tier that is backed up. */
  jobs(source: string | undefined, tier: string | undefined): BackupJob[];
  retention(tier: string): RetentionPolicy;
}

export function loadConfig(file = process.env.STRIPEMOVER_CONFIG): BackupConfig {
  let raw: ConfigFile = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as ConfigFile;
    } catch (err) {
      throw new RangeError(`config file ${file}: ${(err as Error).message}`);
    }
  }
  const tiers = raw.tiers ?? {};
  const tierOf = (name: string) => {
    const t = tiers[name];
    if (!t) throw new RangeError(`no tier '${name}' in ${file ?? 'the configuration (no config file)'}`);
    return t;
  };
  const job = (source: string, name?: string, t?: TierConfig): BackupJob => ({
    source: path.resolve(source),
    tags: name ? [`tier:${name}`] : [],
    filter: t?.exclude?.length
      ? new Filter({ rules: t.exclude.map((pattern) => ({ action: 'exclude', pattern })) })
      : undefined,
    oneFileSystem: t?.oneFileSystem,
  });
  return {
    repository: raw.repository && file ? path.resolve(path.dirname(file), raw.repository) : raw.repository,
    jobs(source, tier) {
      const named = Object.entries(tiers);
      if (tier !== undefined) {
        const t = tierOf(tier);
        if (t.backup === false) throw new RangeError(`tier '${tier}' is never backed up (backup: false)`);
        return (source ? [source] : t.sources).map((s) => job(s, tier, t));
      }
      if (source !== undefined) {
        const owner = named.find(([, t]) => t.sources.some((s) => path.resolve(s) === path.resolve(source)));
        if (owner && owner[1].backup === false)
          throw new RangeError(`${source} is in tier '${owner[0]}', which is never backed up`);
        return [job(source, owner?.[0], owner?.[1])];
      }
      const jobs = named
        .filter(([, t]) => t.backup !== false)
        .flatMap(([name, t]) => t.sources.map((s) => job(s, name, t)));
      if (jobs.length === 0) throw new RangeError('nothing to back up: give a source, or tiers in a config file');
      return jobs;
    },
    retention: (tier) => tierOf(tier).retention ?? {},
  };
}
