import { freePort } from '../eval/backends/process.js';

/**
 * Ports for the servers a sweep starts on this machine: each asked of the operating system (a
 * port nothing listens on now) and never one another running task of this sweep holds, so two
 * servers started at once cannot be told the same port even before either listens.
 */

export class PortPool {
  private readonly held = new Set<number>();

  constructor(
    private readonly host = '127.0.0.1',
    private readonly probe: (host: string) => Promise<number> = freePort,
  ) {}

  async take(): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const p = await this.probe(this.host);
      if (this.held.has(p)) continue;
      this.held.add(p);
      return p;
    }
    throw new Error(`no free port at ${this.host} after 100 tries`);
  }

  give(port: number): void {
    this.held.delete(port);
  }

  get inUse(): number {
    return this.held.size;
  }
}
