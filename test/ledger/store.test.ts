import { spawnSync } from 'node:child_process';
import { constants, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger, createCosigner, decodeEntryBundle, ed25519PrivateKeyFromSeed, openCheckpoint, verifyTlogProof } from '../../src/ledger/index.ts';

const root = mkdtempSync(path.join(tmpdir(), 'attex-ledger-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `l${n++}`);
const signer = { name: 'store.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(3)) };
const witness = createCosigner('store.test/witness', ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(4)), () => new Date(1_800_000_000_000));
const open = (dir: string) => Ledger.open(dir, { signer, witnesses: [witness], checkpointInterval: 0 });
const entry = (i: number) => new TextEncoder().encode(`{"entry":${i}}`);

/** A ledger with `count` entries and checkpoints at `checkpointAt` sizes (plus the one close() publishes). */
async function build(dir: string, count: number, checkpointAt: number[] = []): Promise<void> {
  const ledger = await open(dir);
  for (let i = 0; i < count; i++) {
    await ledger.append(entry(i), { key: `key-${i}` });
    if (checkpointAt.includes(i + 1)) await ledger.publishCheckpoint();
  }
  await ledger.close();
}

async function expectOpenFails(dir: string, code: string, message?: RegExp): Promise<void> {
  const err = await open(dir).then(
    async (l) => {
      await l.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code });
  if (message) expect((err as Error).message).toMatch(message);
}

/** open(2) flags of this process's descriptors for `file` (Linux: /proc/self/fdinfo). */
function openFlags(file: string): number[] {
  const flags: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    if (target !== file) continue;
    const line = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (line) flags.push(parseInt(line[1]!, 8));
  }
  return flags;
}

describe('Ledger store', () => {
  // Appends skip fdatasync on platforms with O_DSYNC: a seq opened without it would acknowledge
  // receipts that a power cut can still take away.
  it.runIf(process.platform === 'linux')('opens seq for durable writes (O_DSYNC), when created and when reopened', async () => {
    const dir = freshDir();
    for (let round = 0; round < 2; round++) {
      const ledger = await open(dir);
      try {
        await ledger.append(entry(round), { key: `dsync-${round}` });
        const flags = openFlags(path.join(dir, 'seq'));
        expect(flags.length).toBeGreaterThan(0);
        for (const f of flags) expect(f & constants.O_DSYNC).toBe(constants.O_DSYNC);
      } finally {
        await ledger.close();
      }
    }
  });

  it('group-commits concurrent appends: one batch for many callers, every entry readable after its ack', async () => {
    const dir = freshDir();
    const ledger = await open(dir);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => ledger.append(entry(i), { key: `k${i}` })));
    expect(results.map((r) => r.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(ledger.commitStats.records).toBe(500 + 1); // + the size-0 checkpoint published on creation
    expect(ledger.commitStats.batches).toBeLessThan(10);
    // Already on disk, read by an independent reader before any checkpoint or close.
    const seq = readFileSync(path.join(dir, 'seq'));
    for (const i of [0, 250, 499]) expect(seq.includes(Buffer.from(entry(i)))).toBe(true);
    for (const i of [0, 1, 77, 499]) expect(await ledger.get(results[i]!.index)).toEqual(entry(i));
    expect(ledger.findByKey('k42')).toBe(results[42]!.index);
    expect(ledger.findByKey('nope')).toBeUndefined();
    await ledger.close();
    await expect(ledger.append(entry(1))).rejects.toMatchObject({ code: 'ledger.closed' });
  });

  it('refuses oversized entries and duplicate keys, and serves proofs against published checkpoints', async () => {
    const ledger = await open(freshDir());
    await expect(ledger.append(new Uint8Array(65_536))).rejects.toMatchObject({ code: 'ledger.entry-too-large' });
    await ledger.append(new Uint8Array(65_535));
    await ledger.append(entry(1), { key: 'dup' });
    await expect(ledger.append(entry(2), { key: 'dup' })).rejects.toMatchObject({ code: 'ledger.duplicate-key' });
    const proof = await ledger.tlogProof(1);
    const verified = verifyTlogProof(proof, entry(1), { logVerifierKey: ledger.verifierKey, witnessVerifierKeys: [...ledger.witnessVerifierKeys], requireWitness: true });
    expect(verified.checkpoint.size).toBe(2);
    await expect(ledger.get(2)).rejects.toMatchObject({ code: 'ledger.not-found' });
    await expect(ledger.tlogProof(0, 1)).rejects.toMatchObject({ code: 'ledger.invalid-argument' });
    await ledger.close();
  });

  it('reopens to the same state: full tiles on disk, partial tiles derived on demand', async () => {
    const dir = freshDir();
    await build(dir, 600, [300]);
    const ledger = await open(dir);
    expect(ledger.size).toBe(600);
    expect(ledger.publishedSizes()).toEqual([0, 300, 600]);
    expect(ledger.findByKey('key-599')).toBe(599);
    const cp = openCheckpoint(readFileSync(path.join(dir, 'checkpoint'), 'utf8'), { logVerifierKey: ledger.verifierKey });
    expect(cp.checkpoint.size).toBe(600);
    // Full tiles are immutable files; partial ones are never written.
    expect(readFileSync(path.join(dir, 'tile/0/001'))).toEqual(Buffer.from(ledger.hashTile(0, 1, 256)));
    expect(readFileSync(path.join(dir, 'tile/entries/001')).length).toBeGreaterThan(256 * 2);
    expect(existsSync(path.join(dir, 'tile/0/002.p'))).toBe(false);
    expect(existsSync(path.join(dir, 'tile/entries/002.p'))).toBe(false);
    expect(await ledger.tile('tile/0/002.p/88')).toEqual(ledger.hashTile(0, 2, 88));
    expect((await ledger.tile('tile/1/000.p/2'))!.length).toBe(64);
    expect(await ledger.tile('tile/0/001')).toEqual(new Uint8Array(readFileSync(path.join(dir, 'tile/0/001'))));
    const bundle = decodeEntryBundle((await ledger.tile('tile/entries/002.p/88'))!);
    expect(bundle.map((e) => new TextDecoder().decode(e))).toEqual(Array.from({ length: 88 }, (_, i) => `{"entry":${512 + i}}`));
    expect(await ledger.tile('tile/0/002.p/40')).toEqual(ledger.hashTile(0, 2, 40)); // an older tree's partial tile
    for (const missing of ['tile/0/002', 'tile/0/002.p/89', 'tile/1/000', 'tile/2/000.p/1', 'tile/entries/003.p/1', 'tile/0/x000/002.p/88', 'tile/0/002.p/088', 'tile/0/002.p/256', 'tile/00/000', '../seq']) {
      expect(await ledger.tile(missing)).toBeUndefined();
    }
    await ledger.close();
  });

  it('commit checkpoints: one write and fsync carry the entries and a checkpoint over them', async () => {
    const dir = freshDir();
    const ledger = await open(dir);
    const before = ledger.commitStats;
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => ledger.append(entry(i), { key: `c${i}`, checkpoint: i % 2 === 0 })));
    const stats = ledger.commitStats;
    // Every batch carries one checkpoint record beside its entries: no extra fsync for the checkpoint.
    expect(stats.records - before.records - 300).toBe(stats.batches - before.batches);
    const latest = openCheckpoint(ledger.checkpoint(), { logVerifierKey: ledger.verifierKey, witnessVerifierKeys: [...ledger.witnessVerifierKeys] });
    expect(latest.checkpoint.size).toBe(300);
    expect(latest.witnesses.length).toBe(1);
    for (const r of [results[0]!, results[151]!, results[299]!]) {
      const proof = await ledger.tlogProof(r.index);
      expect(ledger.commitStats.batches).toBe(stats.batches); // no publication needed for a proof
      verifyTlogProof(proof, await ledger.get(r.index), { logVerifierKey: ledger.verifierKey });
    }
    // The checkpoint file only catches up on publication; the commit checkpoints live in seq.
    expect(openCheckpoint(readFileSync(path.join(dir, 'checkpoint'), 'utf8'), { logVerifierKey: ledger.verifierKey }).checkpoint.size).toBe(0);
    const published = ledger.publishedSizes();
    await ledger.close();
    const reopened = await open(dir);
    expect(reopened.publishedSizes()).toEqual(published);
    expect(reopened.checkpoint()).toBe(ledger.checkpoint());
    expect(readFileSync(path.join(dir, 'checkpoint'), 'utf8')).toBe(ledger.checkpoint()); // close reused the size-300 note
    await reopened.close();
  });

  it('after a crash the checkpoint file may lag the commit checkpoints; open catches it up', async () => {
    const dir = freshDir();
    await build(dir, 5);
    const stale = readFileSync(path.join(dir, 'checkpoint'));
    const ledger = await open(dir);
    await ledger.append(entry(5), { checkpoint: true });
    const note = ledger.checkpoint();
    await ledger.close();
    writeFileSync(path.join(dir, 'checkpoint'), stale); // as if the file publication never happened...
    const seq = readFileSync(path.join(dir, 'seq'));
    truncateSync(path.join(dir, 'seq'), seq.indexOf(Buffer.from(note)) + Buffer.byteLength(note)); // ...nor its record (the commit record comes first)
    const reopened = await open(dir);
    expect(reopened.size).toBe(6);
    expect(reopened.checkpoint()).toBe(note);
    expect(readFileSync(path.join(dir, 'checkpoint'), 'utf8')).toBe(note);
    await reopened.close();
  });
});

describe('tamper and crash detection on open', () => {
  it('an edited entry with a stale checksum is ledger.corrupt naming file and offset', async () => {
    const dir = freshDir();
    await build(dir, 10);
    const seq = readFileSync(path.join(dir, 'seq'));
    const at = seq.indexOf('{"entry":4}');
    seq[at + 9] = '5'.charCodeAt(0);
    writeFileSync(path.join(dir, 'seq'), seq);
    await expectOpenFails(dir, 'ledger.corrupt', /seq: record checksum mismatch at offset \d+/);
  });

  it('an edited entry with a recomputed checksum is ledger.tampered', async () => {
    const dir = freshDir();
    await build(dir, 10);
    const seq = readFileSync(path.join(dir, 'seq'));
    const at = seq.indexOf('{"entry":4}');
    seq[at + 9] = '5'.charCodeAt(0);
    const recordStart = at - 2 - 'key-4'.length - 9;
    const length = seq.readUInt32BE(recordStart);
    seq.writeUInt32BE(crc32(seq.subarray(recordStart + 8, recordStart + 9 + length)), recordStart + 4);
    writeFileSync(path.join(dir, 'seq'), seq);
    await expectOpenFails(dir, 'ledger.tampered', /do not reproduce the root/);
  });

  it('an entry edited under a commit checkpoint (checksum recomputed) is ledger.tampered at that record', async () => {
    const dir = freshDir();
    const ledger = await open(dir);
    await Promise.all([0, 1, 2].map((i) => ledger.append(entry(i), { key: `key-${i}`, checkpoint: true })));
    const note = ledger.checkpoint();
    await ledger.close();
    const seq = readFileSync(path.join(dir, 'seq'));
    const commitRecord = seq.indexOf(Buffer.from(note)) - 9;
    expect(seq[commitRecord + 8]).toBe(3); // the commit checkpoint precedes the close's file record
    const at = seq.indexOf('{"entry":1}');
    seq[at + 9] = '7'.charCodeAt(0);
    const recordStart = at - 2 - 'key-1'.length - 9;
    seq.writeUInt32BE(crc32(seq.subarray(recordStart + 8, recordStart + 9 + seq.readUInt32BE(recordStart))), recordStart + 4);
    writeFileSync(path.join(dir, 'seq'), seq);
    await expectOpenFails(dir, 'ledger.tampered', new RegExp(`root of the size-3 checkpoint recorded at offset ${commitRecord}$`));
  });

  it('an edited hash tile or entry bundle is ledger.tampered', async () => {
    const dir = freshDir();
    await build(dir, 300);
    const tile = path.join(dir, 'tile/0/000');
    const original = readFileSync(tile);
    const edited = Buffer.from(original);
    edited[100]! ^= 1;
    writeFileSync(tile, edited);
    await expectOpenFails(dir, 'ledger.tampered', /tile\/0\/000 does not match/);
    writeFileSync(tile, original);
    const bundle = path.join(dir, 'tile/entries/000');
    writeFileSync(bundle, Buffer.from(readFileSync(bundle).toString('latin1').replace('{"entry":200}', '{"entry":201}'), 'latin1'));
    await expectOpenFails(dir, 'ledger.tampered', /tile\/entries\/000 does not match/);
  });

  it('a FIFO or /dev/zero planted as a log file is ledger.tampered, without hanging or filling memory', async () => {
    const dir = freshDir();
    await build(dir, 300);
    const tile = path.join(dir, 'tile/0/000');
    rmSync(tile);
    symlinkSync('/dev/zero', tile);
    await expectOpenFails(dir, 'ledger.tampered', /000 in the log directory is not a regular file/);
    rmSync(tile);
    const checkpoint = path.join(dir, 'checkpoint');
    rmSync(checkpoint);
    expect(spawnSync('mkfifo', [checkpoint]).status).toBe(0);
    await expectOpenFails(dir, 'ledger.tampered', /checkpoint in the log directory is not a regular file/);
  });

  it('a checkpoint rolled back to an older signed one is ledger.rollback; one from another key is ledger.tampered', async () => {
    const dir = freshDir();
    await build(dir, 20, [10]);
    const older = path.join(root, `older-${n}`);
    const other = freshDir();
    await build(dir, 0); // reopen + close: no change
    copyFileSync(path.join(dir, 'checkpoint'), older);
    const ledger = await open(dir);
    await ledger.append(entry(99));
    await ledger.close();
    copyFileSync(older, path.join(dir, 'checkpoint'));
    await expectOpenFails(dir, 'ledger.rollback', /below the published size/);
    const foreign = await Ledger.open(other, { signer: { name: 'store.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(8)) }, checkpointInterval: 0 });
    await foreign.close();
    copyFileSync(path.join(other, 'checkpoint'), path.join(dir, 'checkpoint'));
    await expectOpenFails(dir, 'ledger.tampered', /checkpoint file does not verify/);
  });

  it('a torn tail is truncated; a truncation into published entries is ledger.rollback', async () => {
    const dir = freshDir();
    await build(dir, 50);
    const seqPath = path.join(dir, 'seq');
    const full = readFileSync(seqPath).length;
    truncateSync(seqPath, full - 5); // cuts the last record (the checkpoint record close() wrote)
    const ledger = await open(dir);
    expect(ledger.recoveredTailBytes).toBeGreaterThan(0);
    expect(ledger.size).toBe(50);
    expect(ledger.publishedSizes()).toContain(50); // re-recorded from the checkpoint file
    await ledger.close();
    const seq = readFileSync(seqPath);
    const cut = seq.indexOf('{"entry":45}') + 3;
    truncateSync(seqPath, cut);
    await expectOpenFails(dir, 'ledger.rollback', /checkpoint file covers 50 entries and only 45 precede it: acknowledged entries are damaged; nothing was truncated/);
    expect(readFileSync(seqPath).length).toBe(cut); // the refused open left the file as it was
  });

  it('a tail crafted full of checkpoint-like records is not searched without bound: ledger.corrupt, nothing cut', async () => {
    const dir = freshDir();
    await build(dir, 5);
    const seqPath = path.join(dir, 'seq');
    const seq = readFileSync(seqPath);
    // An incomplete record, then 512 KiB of headers claiming 60,000-byte checkpoint bodies with
    // wrong checksums, one every 16 bytes: each would cost a checksum over 60,000 bytes.
    const tail = Buffer.alloc(512 * 1024);
    tail.writeUInt32BE((1 << 20) - 1, 0); // a body running past the end of the file
    for (let at = 16; at + 9 <= tail.length; at += 16) {
      tail.writeUInt32BE(60_000, at);
      tail[at + 8] = 3;
    }
    const crafted = Buffer.concat([seq, tail]);
    writeFileSync(seqPath, crafted);
    await expectOpenFails(dir, 'ledger.corrupt', /more checkpoint-like records than a torn write holds: not cut/);
    expect(readFileSync(seqPath).equals(crafted)).toBe(true);
  });

  it('a damaged length in the middle of acknowledged records is ledger.corrupt, never cut off as a torn tail', async () => {
    const dir = freshDir();
    const ledger = await open(dir);
    for (let i = 0; i < 30; i++) await ledger.append(entry(i), { checkpoint: true });
    // No close(): the checkpoint file lags, as after a crash; the commit checkpoints are in seq.
    const seqPath = path.join(dir, 'seq');
    const seq = readFileSync(seqPath);
    const record = seq.indexOf('{"entry":12}') - 2 - 9; // its header: u32 length, u32 crc, u8 type, then u16 key length
    const damaged = Buffer.from(seq);
    damaged.writeUInt32BE(seq.length, record); // a length running past the end of the file
    writeFileSync(seqPath, damaged);
    await expectOpenFails(dir, 'ledger.corrupt', /complete checkpoint record at offset \d+: not a torn tail/);
    expect(readFileSync(seqPath).equals(damaged)).toBe(true);
    await ledger.close().catch(() => undefined);
  });
});
