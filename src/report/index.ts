/** The report module's public face: what `mergelab run` and `mergelab report` call. */
export { generateReport, buildReportModel, resolveExperimentDir, type ReportSummary } from './generate.js';
export { formatReportSummary } from './text.js';
export { detectCollapses, checkPoint, references, type CollapseFlag, type Violation, type CollapseRule } from './collapse.js';
export { standoutDiagnostics, parseDiagnostics, layerTable, type Standout } from './diagnostics.js';
export { ReportConfigSchema, camelizeKeys, DEFAULT_THRESHOLDS, resolveOptions, type ReportOptions, type ReportConfig, type CollapseThresholds } from './options.js';
export { bestPerVariant, type BestRow } from './aggregate.js';
