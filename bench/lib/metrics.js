'use strict';
// A small reader of the Prometheus text format, enough for the bench's few gauges.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Map of metric name → [{ labels, value }]. */
function parseMetrics(text) {
  const byName = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2];
    if (!byName.has(m[1])) byName.set(m[1], []);
    byName.get(m[1]).push({ labels, value: Number(m[3]) });
  }
  return byName;
}

/** Sum of a metric's series, optionally only those whose labels match `where`. */
function sum(metrics, name, where = {}) {
  return (metrics.get(name) ?? [])
    .filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

function value(metrics, name) {
  const series = metrics.get(name);
  return series && series.length > 0 ? series[0].value : undefined;
}

function seriesCount(metrics, name) {
  return (metrics.get(name) ?? []).length;
}

module.exports = { parseMetrics, sum, value, seriesCount };
