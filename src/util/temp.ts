import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pidAlive } from './pid.js';

/**
 * Temporary names beside their final ones, and the removal of those a dead process left.
 *
 * Every temporary file or folder mergelab writes is named `.NAME[.TAG].tmp-PID-HEX` in the folder
 * of its final NAME (so a rename publishes it), with the writing process's id in the name: at the
 * next start, a temporary whose process is gone is garbage, and one whose process lives is left
 * alone (it may be another run's work in progress).
 */

const TEMP = /^\.+.*?\.tmp-(\d+)-[0-9a-f]{8}(?:\..*)?$/;

export function tempSibling(target: string, tag?: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${tag ? `.${tag}` : ''}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}


/** The id of the process that made a temporary name, or null when `name` is not one. */
export function tempOwner(name: string): number | null {
  const m = TEMP.exec(name);
  return m ? Number(m[1]) : null;
}

function isDeadTemp(name: string): boolean {
  const pid = tempOwner(name);
  return pid !== null && pid !== process.pid && !pidAlive(pid);
}

/** Remove the dead temporaries of `target` (`.BASE.….tmp-PID-HEX` beside it); returns their paths. */
export async function removeDeadTemps(target: string): Promise<string[]> {
  const base = path.basename(target);
  return removeDead(path.dirname(target), (name) => name.replace(/^\.+/, '').startsWith(`${base}.`));
}

/** Remove every dead temporary directly inside `dir` (a folder only mergelab writes to); returns their paths. */
export async function removeDeadTempsIn(dir: string): Promise<string[]> {
  return removeDead(dir, () => true);
}

async function removeDead(dir: string, mine: (name: string) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!mine(name) || !isDeadTemp(name)) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}
