#!/usr/bin/env node
// @ts-check
// `npm start` on a fresh clone: build once, and again only when a source is newer than the build
// (the apps and the caller SDK, dist/client).
const { existsSync, statSync, readdirSync, utimesSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

const root = join(__dirname, '..');
const outputs = [
  'dist/apps/token-vendor/main.js',
  'dist/apps/identity-sandbox/main.js',
  'dist/client/index.js',
].map((p) => join(root, p));

/**
 * The newest modification time (ms) of a .ts file under `dir`.
 * @param {string} dir
 * @returns {number}
 */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const built = outputs.every(existsSync) ? Math.min(...outputs.map((p) => statSync(p).mtimeMs)) : 0;
const sources = Math.max(newestSource(join(root, 'apps')), newestSource(join(root, 'libs')));
if (built < sources) {
  console.log('Building token-vendor and the identity sandbox...');
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
  // webpack leaves an output it would write unchanged (the sandbox after a libs-only change)
  // with its old time: mark every output as built now, or each later run would build again.
  const now = new Date();
  for (const output of outputs) utimesSync(output, now, now);
}
