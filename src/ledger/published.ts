/**
 * Where each checkpoint the log has published lies in `seq`: 20 bytes per checkpoint instead of
 * its note (hundreds of bytes, more with cosignatures), which matters because the executor
 * publishes one with every group commit. Notes are read back, and verified, when asked for.
 */

/** A recorded checkpoint: its tree size and the byte range of its note in `seq`. */
export interface NoteLocation {
  readonly size: number;
  readonly offset: number;
  readonly length: number;
}

export type CheckpointKind = 'commit' | 'file';

/** One kind of checkpoint record in file order: sizes never decrease (the ledger checks it). */
class Column {
  #sizes = new Float64Array(64);
  #offsets = new Float64Array(64);
  #lengths = new Uint32Array(64);
  count = 0;

  push(at: NoteLocation): void {
    if (this.count === this.#sizes.length) {
      const grow = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
        const next = make(a.length * 2);
        next.set(a);
        return next;
      };
      this.#sizes = grow(this.#sizes, (n) => new Float64Array(n));
      this.#offsets = grow(this.#offsets, (n) => new Float64Array(n));
      this.#lengths = grow(this.#lengths, (n) => new Uint32Array(n));
    }
    this.#sizes[this.count] = at.size;
    this.#offsets[this.count] = at.offset;
    this.#lengths[this.count] = at.length;
    this.count++;
  }

  sizeAt(i: number): number {
    return this.#sizes[i]!;
  }

  at(i: number): NoteLocation {
    return { size: this.#sizes[i]!, offset: this.#offsets[i]!, length: this.#lengths[i]! };
  }

  /** The last record of exactly `size`, if any (binary search). */
  find(size: number): NoteLocation | undefined {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#sizes[mid]! <= size) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && this.#sizes[lo - 1] === size ? this.at(lo - 1) : undefined;
  }
}

export class PublishedIndex {
  readonly #columns: Record<CheckpointKind, Column> = { commit: new Column(), file: new Column() };

  add(kind: CheckpointKind, at: NoteLocation): void {
    this.#columns[kind].push(at);
  }

  /** A recorded checkpoint of exactly `size`, of either kind. */
  find(size: number): NoteLocation | undefined {
    return this.#columns.commit.find(size) ?? this.#columns.file.find(size);
  }

  last(kind: CheckpointKind): NoteLocation | undefined {
    const column = this.#columns[kind];
    return column.count === 0 ? undefined : column.at(column.count - 1);
  }

  /** Every published size, ascending, each once. */
  sizes(): number[] {
    const { commit, file } = this.#columns;
    const out: number[] = [];
    let i = 0;
    let j = 0;
    while (i < commit.count || j < file.count) {
      const next = j >= file.count || (i < commit.count && commit.sizeAt(i) <= file.sizeAt(j)) ? commit.sizeAt(i++) : file.sizeAt(j++);
      if (out.at(-1) !== next) out.push(next);
    }
    return out;
  }
}
