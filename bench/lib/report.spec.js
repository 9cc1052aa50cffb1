// @ts-check
'use strict';
// Unit spec of the results tables. bench/results.md, which bench/run.js writes whole, is checked
// by `npm run lint` (prettier): its tables must come out as prettier writes them, or a bench run
// would leave the lint failing.
const { execFileSync } = require('node:child_process');
const { fmt, table } = require('./report');

const PRETTIER = require.resolve('prettier/bin/prettier.cjs');

/** @param {string} markdown */
function formatted(markdown) {
  return execFileSync(process.execPath, [PRETTIER, '--stdin-filepath', 'bench/results.md'], {
    input: markdown,
    encoding: 'utf8',
  });
}

describe('table', () => {
  it('writes a Markdown table exactly as prettier formats it', () => {
    const doc = [
      '## 1. Hot path',
      '',
      table(
        ['server', 'req/s', 'p99 ms', '÷ floor', 'CPU'],
        [
          ['token-vendor', fmt.int(12_345.6), fmt.ms(0.0123), fmt.ratio(0.853), fmt.pct(0.5)],
          ['floor', fmt.int(undefined), fmt.ms(undefined), fmt.ratio(1), undefined],
          ['a name longer than its header', 1, '→', '×', ''],
        ],
      ),
      '',
    ].join('\n');

    expect(formatted(doc)).toBe(doc);
  });
});
