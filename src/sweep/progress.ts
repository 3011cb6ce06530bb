import cliProgress from 'cli-progress';

/**
 * Run progress: a cli-progress bar on a terminal (points done, running tasks, failed, ETA), plain
 * log lines otherwise (CI logs, pipes), nothing in tests that ask for silence.
 */
export interface ProgressState {
  done: number;
  total: number;
  running: number;
  failed: number;
  /** What the running tasks are, for the bar's tail. */
  activity: string;
  /** Tokens the evaluations have processed so far in this run (prompts, generations, scored text). */
  tokens?: number;
}

export interface Progress {
  start(state: ProgressState): void;
  update(state: ProgressState): void;
  /** A finished point or a notable event. */
  log(line: string): void;
  stop(): void;
}

function fmtEta(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** ETA from this run's own pace (points already cached at start do not count as pace). */
export class Eta {
  private t0 = Date.now();
  constructor(private readonly startDone: number) {}
  seconds(done: number, total: number): number | null {
    const n = done - this.startDone;
    if (n <= 0) return null;
    return (((Date.now() - this.t0) / 1000) * (total - done)) / n;
  }
}

/** Tokens per second over the last `windowMs` (evaluation speed, whatever else the run is doing). */
export class TokenRate {
  private marks: Array<[number, number]> = [];
  constructor(private readonly windowMs = 10_000, private readonly now: () => number = Date.now) {}
  rate(tokens: number): number | null {
    const t = this.now();
    this.marks.push([t, tokens]);
    while (this.marks.length > 2 && t - this.marks[0][0] > this.windowMs) this.marks.shift();
    const [t0, n0] = this.marks[0];
    return t > t0 ? ((tokens - n0) * 1000) / (t - t0) : null;
  }
}

export function fmtRate(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '? tok/s';
  return r >= 1000 ? `${(r / 1000).toFixed(1)}k tok/s` : `${Math.round(r)} tok/s`;
}

export function createProgress(mode: 'auto' | 'bar' | 'lines' | 'none', write: (line: string) => void): Progress {
  const useBar = mode === 'bar' || (mode === 'auto' && !!process.stderr.isTTY);
  if (mode === 'none') return { start() {}, update() {}, log() {}, stop() {} };
  let eta: Eta | null = null;
  const rate = new TokenRate();
  if (!useBar) {
    let last: ProgressState | null = null;
    return {
      start(s) {
        eta = new Eta(s.done);
        last = s;
        write(`progress: ${s.done}/${s.total} points already done`);
      },
      update(s) {
        last = s;
      },
      log(line) {
        const s = last;
        write(s ? `[${s.done}/${s.total}${s.failed ? `, ${s.failed} failed` : ''}, eta ${fmtEta(eta?.seconds(s.done, s.total) ?? null)}${s.tokens ? `, ${fmtRate(rate.rate(s.tokens))}` : ''}] ${line}` : line);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {value}/{total} points | running {running} | failed {failed} | ETA {etaText} | {rateText} | {activity}',
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (s: ProgressState) => ({ rateText: fmtRate(rate.rate(s.tokens ?? 0)), running: s.running, failed: s.failed, activity: s.activity.slice(0, 50), etaText: fmtEta(eta?.seconds(s.done, s.total) ?? null) });
  return {
    start(s) {
      eta = new Eta(s.done);
      bar.start(s.total, s.done, payload(s));
    },
    update(s) {
      bar.update(s.done, payload(s));
    },
    log(line) {
      // Lines go above the bar: cli-progress redraws it on the next update.
      process.stderr.write('\r\x1b[2K');
      write(line);
    },
    stop() {
      bar.stop();
    },
  };
}
