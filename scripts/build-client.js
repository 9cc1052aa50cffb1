#!/usr/bin/env node
// @ts-check
// Builds the caller SDK (@token-vendor/client, libs/client) into dist/client: compiled JS, .d.ts,
// its package.json and README, so `npm install dist/client` works in another project.
const { cpSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync } = require('node:child_process');

const root = join(__dirname, '..');
const out = join(root, 'dist/client');
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'libs/client/tsconfig.build.json')],
  { cwd: root, stdio: 'inherit' },
);
for (const file of ['package.json', 'README.md'])
  cpSync(join(root, 'libs/client', file), join(out, file));
console.log(`@token-vendor/client built into ${out}`);
