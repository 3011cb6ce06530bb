/** Held-out prose for the lm suite (filled in once the pretraining generator exists). */
export async function buildLmEval(_root: string, _n: number): Promise<Array<{ id: string; text: string }> | null> {
  return null;
}
