/** Types of scripts/build.mjs (plain JavaScript so that `npm install` can run it before any TypeScript). */
export const ROOT: string;
/** True when dist/ is missing or a source (or the build script) changed after the last build. */
export function isStale(root?: string): boolean;
/** Build dist/ from src/; resolves to the number of files written. */
export function build(root?: string): Promise<number>;
