/**
 * Slurm's one-line output formats, parsed. Pure functions, so they are tested on captured text.
 */

/**
 * One `scontrol -o show ...` line as key -> value. Values are not quoted and a few hold spaces
 * (`OS=Linux 6.1 #1 SMP`, `Reason=...`), so a field ends where the next `Key=` begins.
 */
export function parseScontrolLine(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=/g;
  const marks: Array<{ key: string; start: number; valueStart: number }> = [];
  for (const m of line.matchAll(re)) {
    const start = m.index ?? 0;
    marks.push({ key: m[1], start, valueStart: start + m[0].length });
  }
  marks.forEach((m, i) => {
    const end = i + 1 < marks.length ? marks[i + 1].start : line.length;
    out[m.key] = line.slice(m.valueStart, end).trim();
  });
  return out;
}

export function parseScontrol(text: string): Array<Record<string, string>> {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map(parseScontrolLine);
}

/** A job array element as Slurm names it: `ARRAYJOBID_INDEX`. */
export type ElementId = `${string}_${number}`;

export function elementId(jobId: string, index: number): ElementId {
  return `${jobId}_${index}`;
}

export interface QueueEntry {
  element: ElementId;
  /** PENDING, RUNNING, COMPLETING, CONFIGURING, SUSPENDED, ... */
  state: string;
  /** Why it waits (Dependency, Resources, Priority, ...) or None. */
  reason: string;
  node: string;
}

/** The format mergelab asks squeue for: `%i|%T|%r|%N`, one array element per line (`-r`). */
export const SQUEUE_FORMAT = '%i|%T|%r|%N';

export function parseSqueue(text: string): QueueEntry[] {
  const out: QueueEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [id, state, reason, node] = line.trim().split('|');
    const m = /^(\d+)_(\d+)$/.exec(id ?? '');
    // Only array elements are ours (every mergelab job is an array); `123_[4-9]` does not occur with -r.
    if (!m) continue;
    out.push({ element: elementId(m[1], Number(m[2])), state: state ?? '', reason: reason ?? '', node: node ?? '' });
  }
  return out;
}

/** What `scontrol -o show job` says of one finished element. */
export interface JobEnd {
  element: ElementId;
  state: string;
  reason: string;
  exitCode: string;
  node: string;
  stdout: string;
}

export function jobEnds(records: Array<Record<string, string>>): Map<ElementId, JobEnd> {
  const out = new Map<ElementId, JobEnd>();
  for (const r of records) {
    const arrayJob = r.ArrayJobId;
    const task = r.ArrayTaskId;
    if (!arrayJob || !task || !/^\d+$/.test(task)) continue;
    const element = elementId(arrayJob, Number(task));
    out.set(element, { element, state: r.JobState ?? '', reason: r.Reason ?? '', exitCode: r.ExitCode ?? '', node: r.NodeList ?? r.BatchHost ?? '', stdout: r.StdOut ?? '' });
  }
  return out;
}

/** Slurm states in which an element still holds or waits for a place: it is not over. */
export const LIVE_STATES = new Set(['PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD']);
