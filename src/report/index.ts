/** The report module's public face: what `mergelab run` and `mergelab report` call. */
export { generateReport, buildReportModel, resolveExperimentDir, type ReportSummary } from './generate.js';
export { formatReportSummary } from './text.js';
export { detectCollapses, checkPoint, makeJudge, references, type CollapseFlag, type Violation, type CollapseRule } from './collapse.js';
export { standoutDiagnostics, parseDiagnostics, layerTable, type Standout } from './diagnostics.js';
export { ReportConfigSchema, camelizeKeys, DEFAULT_THRESHOLDS, resolveOptions, type ReportOptions, type ReportConfig, type CollapseThresholds } from './options.js';
export { Scoreboard, paretoFront, type Recommendation, type GoalConfig, type HighlightConfig } from './recommend.js';
export { Noise, type NoiseOptions } from './noise.js';
export { wilson, verdict, type Interval, type Verdict } from './stats.js';
