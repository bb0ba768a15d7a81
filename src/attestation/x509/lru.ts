/**
 * A bounded map that forgets the least recently used entry first. Verifier caches hold only
 * results that are pure functions of their key, so the key must name every input the result
 * depends on (content hashes of the bytes, fingerprints of the trust anchors).
 */
export class LruCache<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();

  /** `max` 0 (or less) disables the cache: `set` keeps nothing. */
  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    if (this.#max === 0) return;
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  get size(): number {
    return this.#map.size;
  }
}
