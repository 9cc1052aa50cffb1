// @ts-check
'use strict';
// In which order the hot-path servers run in each round. A run measures differently right
// after a faster server's run (autocannon's and the machine's state carry over) and at
// different places in a round (the machine's speed drifts), so a fixed order, or one that only
// rotates, would charge that to the same servers every time. The rounds follow a balanced Latin
// square (Williams design): over one full cycle of rounds, every server runs once at every
// place and once right after every other server.

/**
 * The rows of a Williams design for n items (indexes 0..n-1): n rows when n is even, 2n (the
 * square and its mirror image) when n is odd.
 * @param {number} n
 * @returns {number[][]}
 */
function williamsRows(n) {
  // First row 0, 1, n-1, 2, n-2, ...; row r adds r to every entry (mod n).
  const first = [0];
  for (let low = 1, high = n - 1; first.length < n;) {
    first.push(low++);
    if (first.length < n) first.push(high--);
  }
  /** @type {number[][]} */
  const rows = [];
  for (let r = 0; r < n; r++) rows.push(first.map((x) => (x + r) % n));
  if (n % 2 === 1) for (let r = 0; r < n; r++) rows.push([...rows[r]].reverse());
  return rows;
}

/**
 * The servers in the order of round `round` (1-based); the design repeats after a full cycle.
 * @template T
 * @param {readonly T[]} items
 * @param {number} round
 * @returns {T[]}
 */
function orderOfRound(items, round) {
  const rows = williamsRows(items.length);
  return rows[(round - 1) % rows.length].map((i) => items[i]);
}

module.exports = { williamsRows, orderOfRound };
