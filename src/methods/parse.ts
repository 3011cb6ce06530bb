import type { z } from 'zod';
import { UserError } from '../util/errors.js';

/** Parse with a zod schema; a failure is the user's, reported with every issue and the context `what`. */
export function parseParams<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const msgs = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
    throw new UserError(`${what}: ${msgs.join('; ')}`);
  }
  return r.data;
}
