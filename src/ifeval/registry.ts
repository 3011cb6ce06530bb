/**
 * Instruction id -> kwargs schema + checker, and IFEval's strict and loose evaluation.
 * Adding an instruction = one function in checkers.ts and one row here. Shared by the chat
 * suite's scoring (src/eval) and the chat data generator (src/data), which checks every reference
 * response it writes against the instructions it asks for.
 */
import { z } from 'zod';
import * as c from './checkers.js';

interface Entry<S extends z.ZodType> {
  kwargs: S;
  check: (response: string, kw: z.infer<S>) => boolean;
}
function entry<S extends z.ZodType>(kwargs: S, check: (response: string, kw: z.infer<S>) => boolean): Entry<S> {
  return { kwargs, check };
}

const none = z.object({}).passthrough();

export const INSTRUCTIONS = {
  'change_case:english_capital': entry(none, (r) => c.englishCapital(r)),
  'change_case:english_lowercase': entry(none, (r) => c.englishLowercase(r)),
  'startend:quotation': entry(none, (r) => c.quotation(r)),
  'mergelab:brackets': entry(none, (r) => c.brackets(r)),
  'startend:end_checker': entry(z.object({ end_phrase: z.string().min(1) }), c.endChecker),
  'keywords:existence': entry(z.object({ keywords: z.array(z.string().min(1)).min(1) }), c.keywordsExistence),
  'length_constraints:number_words': entry(
    z.object({ relation: z.enum(['less than', 'at least']), num_words: z.number().int().nonnegative() }),
    c.numberWords,
  ),
  'mergelab:repeat_word': entry(z.object({ word: z.string().min(1), n: z.number().int().positive() }), c.repeatWord),
  'mergelab:reverse_word': entry(z.object({ word: z.string().min(1) }), c.reverseWord),
} as const satisfies Record<string, Entry<z.ZodType>>;

export type InstructionId = keyof typeof INSTRUCTIONS;
export const INSTRUCTION_IDS = Object.keys(INSTRUCTIONS) as InstructionId[];

export function isInstructionId(id: string): id is InstructionId {
  return Object.prototype.hasOwnProperty.call(INSTRUCTIONS, id);
}

/**
 * Validates one instruction's kwargs; returns a problem description or null. IFEval drops
 * null-valued kwargs before building an instruction, so we do too.
 */
export function kwargsProblem(id: string, kwargs: unknown): string | null {
  if (!isInstructionId(id)) return `unknown instruction id "${id}" (known: ${INSTRUCTION_IDS.join(', ')})`;
  const cleaned = Object.fromEntries(Object.entries((kwargs ?? {}) as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined));
  const res = INSTRUCTIONS[id].kwargs.safeParse(cleaned);
  if (res.success) return null;
  return `kwargs for ${id}: ` + res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** One instruction on one response, no strict/loose handling. Throws on bad kwargs (validate first). */
export function checkInstruction(id: string, response: string, kwargs: unknown): boolean {
  const problem = kwargsProblem(id, kwargs);
  if (problem) throw new Error(problem);
  const e = INSTRUCTIONS[id as InstructionId] as Entry<z.ZodType>;
  const cleaned = Object.fromEntries(Object.entries((kwargs ?? {}) as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined));
  return e.check(response, cleaned);
}

/** IFEval strict: an instruction is followed when the response is not blank and passes the check. */
export function checkAll(response: string, ids: readonly string[], kwargs: readonly unknown[], _prompt?: string): boolean[] {
  return ids.map((id, i) => response.trim() !== '' && checkInstruction(id, response, kwargs[i]));
}

/**
 * IFEval's loose variants: the response, without its first line, without its last line,
 * without both, and each of these four with asterisks removed (markdown emphasis).
 */
export function looseVariants(response: string): string[] {
  const lines = response.split('\n');
  const noFirst = lines.slice(1).join('\n').trim();
  const noLast = lines.slice(0, -1).join('\n').trim();
  const noBoth = lines.slice(1, -1).join('\n').trim();
  const bare = (s: string) => s.replaceAll('*', '');
  return [response, bare(response), noFirst, noLast, noBoth, bare(noFirst), bare(noLast), bare(noBoth)];
}

/** IFEval loose: an instruction is followed when any non-blank loose variant passes it. */
export function checkAllLoose(response: string, ids: readonly string[], kwargs: readonly unknown[]): boolean[] {
  const variants = looseVariants(response).filter((v) => v.trim() !== '');
  return ids.map((id, i) => variants.some((v) => checkInstruction(id, v, kwargs[i])));
}
