/** `{{field}}` placeholders filled from a dataset row; a missing field is an error naming it. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]);
}

export function renderTemplate(template: string, row: Record<string, unknown>): string {
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, k: string) => {
    const v = row[k];
    if (v === undefined || v === null) throw new Error(`template field "${k}" is missing from the row`);
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}
