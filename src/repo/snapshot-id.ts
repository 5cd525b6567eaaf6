// Snapshot ids: the time a snapshot was started, to the millisecond (so ids sort by time), and a
// random suffix for uniqueness. They name files and directories, so they are checked wherever one
// is read from disk (a snapshot record, a manifest's base).
import { randomBytes } from 'node:crypto';
import { StripemoverError } from '../errors.js';

const ID = /^\d{8}T\d{9}Z-[0-9a-f]{6}$/;

export function newSnapshotId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

export const isSnapshotId = (id: string): boolean => ID.test(id);

export function checkId(id: string): string {
  if (!ID.test(id)) throw new StripemoverError('SNAPSHOT_INVALID', `'${id}' is not a snapshot id`);
  return id;
}
