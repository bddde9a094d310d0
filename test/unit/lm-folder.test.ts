// The LM folder loader reads a shard a group of tensors at a time: groups keep file order, hold at
// most the byte budget, and a tensor larger than the budget goes alone.
import { describe, expect, it } from 'vitest';
import { byteGroups } from '../../lib/models/lm-folder.js';

describe('byteGroups', () => {
  it('groups names in file order under the byte budget, a larger tensor alone', () => {
    const e = (name: string, bytes: number, at: number) => ({ name, begin: at, end: at + bytes });
    const entries = [e('a', 40, 0), e('b', 50, 40), e('c', 20, 90), e('big', 300, 110), e('d', 10, 410), e('f', 100, 420)];
    expect(byteGroups(entries, 100)).toEqual([['a', 'b'], ['c'], ['big'], ['d'], ['f']]);
    expect(byteGroups(entries, 1000)).toEqual([['a', 'b', 'c', 'big', 'd', 'f']]);
    expect(byteGroups([], 100)).toEqual([]);
  });
});
