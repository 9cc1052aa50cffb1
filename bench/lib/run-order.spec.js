// @ts-check
'use strict';
// Unit spec of the hot path's run order (plain JavaScript, like the rest of bench/; run by the
// unit project of jest.config.js).
const { williamsRows, orderOfRound } = require('./run-order');

/**
 * How often each ordered pair (a right before b) and each (item, place) occur over the rows.
 * @param {number[][]} rows
 */
function counts(rows) {
  /** @type {Map<string, number>} */
  const pairs = new Map();
  /** @type {Map<string, number>} */
  const places = new Map();
  const bump = (/** @type {Map<string, number>} */ map, /** @type {string} */ key) =>
    map.set(key, (map.get(key) ?? 0) + 1);
  for (const row of rows) {
    row.forEach((item, place) => {
      bump(places, `${item}@${place}`);
      if (place > 0) bump(pairs, `${row[place - 1]}>${item}`);
    });
  }
  return { pairs, places };
}

describe('williamsRows', () => {
  it.each([2, 3, 4, 5, 6])(
    'with %i servers, every server is at every place and right after every other equally often',
    (n) => {
      const rows = williamsRows(n);
      expect(rows).toHaveLength(n % 2 === 0 ? n : 2 * n);
      for (const row of rows) expect([...row].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
      const { pairs, places } = counts(rows);
      expect(pairs.size).toBe(n * (n - 1));
      expect(new Set(pairs.values())).toEqual(new Set([n % 2 === 0 ? 1 : 2]));
      expect(places.size).toBe(n * n);
      expect(new Set(places.values())).toEqual(new Set([n % 2 === 0 ? 1 : 2]));
    },
  );

  it('gives the 4-server design the bench uses', () => {
    expect(williamsRows(4)).toEqual([
      [0, 1, 3, 2],
      [1, 2, 0, 3],
      [2, 3, 1, 0],
      [3, 0, 2, 1],
    ]);
  });
});

describe('orderOfRound', () => {
  const servers = ['floor', 'ceiling', 'nest', 'vendor'];

  it('follows the rows round by round and starts over after a full cycle', () => {
    expect(orderOfRound(servers, 1)).toEqual(['floor', 'ceiling', 'vendor', 'nest']);
    expect(orderOfRound(servers, 2)).toEqual(['ceiling', 'nest', 'floor', 'vendor']);
    expect(orderOfRound(servers, 5)).toEqual(orderOfRound(servers, 1));
  });

  it('never changes the list it is given', () => {
    const copy = [...servers];
    orderOfRound(servers, 3);
    expect(servers).toEqual(copy);
  });
});
