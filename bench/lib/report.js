// @ts-check
'use strict';
// Machine description and Markdown tables.
const os = require('node:os');

/** @typedef {ReturnType<typeof machineInfo>} MachineInfo */

function machineInfo() {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
  return {
    cores: cpus.length,
    model: (cpus[0]?.model ?? 'unknown').trim(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    loadAtStart: load,
  };
}

/** @param {MachineInfo} m */
function machineLine(m) {
  return (
    `Machine: ${m.cores} cores (${m.model}), ${m.memGiB} GiB, Node ${m.node}, ${m.platform}; ` +
    `run started ${m.date}; load average at start ${m.loadAtStart} (1/5/15 min).`
  );
}

/** @typedef {string | number | undefined} Cell */

/**
 * A Markdown table from a header row and data rows (cells are stringified).
 * @param {string[]} header
 * @param {Cell[][]} rows
 */
function table(header, rows) {
  const cells = [header, ...rows].map((r) => r.map((c) => (c === undefined ? '–' : String(c))));
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)));
  const line = (/** @type {string[]} */ r) =>
    `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(cells[0]),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Cells of the tables: undefined (shown as "–") when there is no figure. */
const fmt = {
  /** @param {number | undefined} n */
  int: (n) =>
    n === undefined || Number.isNaN(n) ? undefined : Math.round(n).toLocaleString('en-US'),
  /** @param {number | undefined} n */
  fixed: (n, d = 1) => (n === undefined || Number.isNaN(n) ? undefined : n.toFixed(d)),
  /** @param {number | undefined} n */
  ratio: (n) => (n === undefined || Number.isNaN(n) ? undefined : `${n.toFixed(2)}×`),
  /** @param {number | undefined} n */
  pct: (n) => (n === undefined || Number.isNaN(n) ? undefined : `${(n * 100).toFixed(0)} %`),
  /** @param {number | undefined} bytes */
  mib: (bytes) => (bytes === undefined ? undefined : (bytes / 2 ** 20).toFixed(1)),
  /** @param {number | undefined} bytes */
  kib: (bytes) =>
    bytes === undefined || Number.isNaN(bytes) ? undefined : (bytes / 1024).toFixed(2),
  /** @param {number | undefined} seconds */
  ms: (seconds) => (seconds === undefined ? undefined : (seconds * 1000).toFixed(1)),
};

module.exports = { machineInfo, machineLine, table, median, fmt };
