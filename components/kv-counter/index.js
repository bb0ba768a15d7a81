// Increment a named counter in the granted `counters` bucket (wasi:keyvalue/store).
import store from 'wasi:keyvalue/store@0.2.0-draft2';

export const action = {
  run(input) {
    const { name, bucket = 'counters' } = JSON.parse(input);
    if (typeof name !== 'string' || name.length === 0 || name.length > 64) {
      throw { code: 'invalid-input', message: 'name must be a non-empty string' };
    }
    let b;
    try {
      b = store.open(bucket);
    } catch (e) {
      const err = e && e.payload !== undefined ? e.payload : e;
      throw { code: `kv-${err.tag ?? 'error'}`, message: `cannot open bucket ${bucket}` };
    }
    const current = b.get(name);
    const count = (current ? Number(String.fromCharCode(...current)) : 0) + 1;
    const text = String(count);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    b.set(name, bytes);
    return JSON.stringify({ name, count });
  },
};
