// @ts-check
'use strict';
// A small reader of the Prometheus text format, enough for the bench's few gauges.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** @typedef {{ labels: Record<string, string>, value: number }} Series */
/** @typedef {Map<string, Series[]>} Metrics */

/**
 * Map of metric name → [{ labels, value }].
 * @param {string} text
 * @returns {Metrics}
 */
function parseMetrics(text) {
  /** @type {Metrics} */
  const byName = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2];
    let series = byName.get(m[1]);
    if (!series) byName.set(m[1], (series = []));
    series.push({ labels, value: Number(m[3]) });
  }
  return byName;
}

/**
 * Sum of a metric's series, optionally only those whose labels match `where`.
 * @param {Metrics} metrics
 * @param {string} name
 * @param {Record<string, string>} [where]
 */
function sum(metrics, name, where = {}) {
  return (metrics.get(name) ?? [])
    .filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

/**
 * The value of a metric's first series (undefined when it has none).
 * @param {Metrics} metrics
 * @param {string} name
 */
function value(metrics, name) {
  const series = metrics.get(name);
  return series && series.length > 0 ? series[0].value : undefined;
}

/**
 * The value of a metric every replica exposes (prom-client's process and Node.js metrics):
 * throws when it is missing rather than computing with nothing.
 * @param {Metrics} metrics
 * @param {string} name
 */
function requiredValue(metrics, name) {
  const found = value(metrics, name);
  if (found === undefined) throw new Error(`${name} is missing from /metrics`);
  return found;
}

/**
 * @param {Metrics} metrics
 * @param {string} name
 */
function seriesCount(metrics, name) {
  return (metrics.get(name) ?? []).length;
}

module.exports = { parseMetrics, sum, value, requiredValue, seriesCount };
