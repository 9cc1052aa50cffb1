interface Entry {
  dueAt: number;
  key: string;
  generation: number;
}

/**
 * A min-heap of (time, key): the scheduler pops what is due in O(log n) per item, so its
 * cost follows the number of tokens due, not the number of clients configured. Re-scheduling
 * a key bumps its generation; stale heap entries are skipped when they surface.
 */
export class DueQueue {
  private readonly heap: Entry[] = [];
  private readonly generations = new Map<string, { generation: number; dueAt: number }>();
  /** Never reset: an entry left in the heap by a popped or cancelled key can never look current. */
  private nextGeneration = 0;

  schedule(key: string, dueAt: number): void {
    const generation = ++this.nextGeneration;
    this.generations.set(key, { generation, dueAt });
    this.push({ dueAt, key, generation });
  }

  cancel(key: string): void {
    this.generations.delete(key);
  }

  dueAt(key: string): number | undefined {
    return this.generations.get(key)?.dueAt;
  }

  /** Removes and returns up to `limit` keys due at `now`, earliest first. */
  popDue(now: number, limit: number): string[] {
    const due: string[] = [];
    while (due.length < limit && this.heap.length > 0 && this.heap[0].dueAt <= now) {
      const entry = this.pop();
      if (this.generations.get(entry.key)?.generation !== entry.generation) continue; // stale
      this.generations.delete(entry.key);
      due.push(entry.key);
    }
    return due;
  }

  /** Keys currently scheduled. */
  get size(): number {
    return this.generations.size;
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].dueAt <= heap[i].dueAt) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < heap.length && heap[l].dueAt < heap[smallest].dueAt) smallest = l;
        if (r < heap.length && heap[r].dueAt < heap[smallest].dueAt) smallest = r;
        if (smallest === i) break;
        [heap[smallest], heap[i]] = [heap[i], heap[smallest]];
        i = smallest;
      }
    }
    return top;
  }
}
