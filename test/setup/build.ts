/**
 * Tests that run the command line as users do (`bin/mergelab.js`) run the JavaScript build in
 * dist/. Building it once here, before any test file starts, means they never run a build older
 * than the sources and never race each other rebuilding it (the launcher would rebuild a stale
 * build too, but once per process).
 */
import { build } from '../../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await build();
}
