import * as vega from 'vega';
import { compile as compileVl, type TopLevelSpec } from 'vega-lite';

export interface CompiledChart {
  vega: vega.Spec;
  /** What vega-lite warned about while compiling (kept so a test can insist on none). */
  warnings: string[];
}

/** Vega-Lite -> Vega. Pure apart from vega-lite's logger, which is captured rather than printed. */
export function compileChart(vl: TopLevelSpec): CompiledChart {
  const warnings: string[] = [];
  const logger = {
    level(): never { return this as never; },
    warn: (...args: unknown[]) => { warnings.push(args.map(String).join(' ')); return logger; },
    info: () => logger,
    debug: () => logger,
    error: (...args: unknown[]) => { throw new Error(`vega-lite: ${args.map(String).join(' ')}`); },
  };
  const { spec } = compileVl(vl, { logger: logger as never });
  return { vega: spec as vega.Spec, warnings };
}

/**
 * Render a Vega spec to SVG with vega's headless View. Without node-canvas vega estimates text
 * extents from font size, which is why the charts name plain system fonts.
 */
export async function renderSvg(spec: vega.Spec): Promise<{ svg: string; warnings: string[] }> {
  const warnings: string[] = [];
  const view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Warn, logger: vegaLogger(warnings) });
  try {
    return { svg: await view.toSVG(), warnings };
  } finally {
    view.finalize();
  }
}

function vegaLogger(sink: string[]): vega.LoggerInterface {
  let lvl = vega.Warn;
  const l: vega.LoggerInterface = {
    level(v?: number) { if (v === undefined) return lvl as never; lvl = v; return l as never; },
    error(...a: readonly unknown[]) { throw new Error(`vega: ${a.map(String).join(' ')}`); },
    warn(...a: readonly unknown[]) { sink.push(a.map(String).join(' ')); return l; },
    info() { return l; },
    debug() { return l; },
  } as vega.LoggerInterface;
  return l;
}
