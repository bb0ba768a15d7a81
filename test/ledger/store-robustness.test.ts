/**
 * The ledger over a long life and under failures: what it keeps in memory per checkpoint, what it
 * verifies on open and on read, and that failures come back as typed errors without disabling it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger, type NoteSigner, createCosigner, ed25519PrivateKeyFromSeed, exportLedger } from '../../src/ledger/index.ts';

const root = mkdtempSync(path.join(tmpdir(), 'attex-ledger-robust-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `l${n++}`);
const signer = { name: 'robust.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(5)) };
const entry = (i: number) => new TextEncoder().encode(`{"entry":${i}}`);

describe('Ledger over a long life', () => {
  it('reads older commit checkpoints back from seq, verified: one tampered there fails when read, not the whole log', async () => {
    const dir = freshDir();
    const ledger = await Ledger.open(dir, { signer, checkpointInterval: 0 });
    const notes: string[] = [];
    for (let i = 0; i < 3; i++) {
      await ledger.append(entry(i), { checkpoint: true }); // one batch, one commit checkpoint each
      notes.push(ledger.checkpoint());
    }
    for (const [i, note] of notes.entries()) expect(await ledger.checkpointAt(i + 1)).toBe(note);
    expect(await ledger.checkpointAt(7)).toBeUndefined();
    await ledger.close();

    // Flip one character of the first commit checkpoint's signature, keeping its record's CRC valid.
    const seq = readFileSync(path.join(dir, 'seq'));
    const at = seq.indexOf(Buffer.from(notes[0]!));
    const record = at - 9;
    expect(seq[record + 8]).toBe(3);
    const sigAt = at + notes[0]!.lastIndexOf(' ') + 10;
    seq[sigAt] = seq[sigAt] === 0x41 ? 0x42 : 0x41;
    seq.writeUInt32BE(crc32(seq.subarray(record + 8, record + 9 + seq.readUInt32BE(record))), record + 4);
    writeFileSync(path.join(dir, 'seq'), seq);

    const reopened = await Ledger.open(dir, { signer, checkpointInterval: 0 });
    try {
      expect(reopened.size).toBe(3);
      expect(await reopened.checkpointAt(3)).toBe(notes[2]);
      expect(await reopened.checkpointAt(2)).toBe(notes[1]);
      await expect(reopened.checkpointAt(1)).rejects.toMatchObject({ code: 'ledger.tampered', message: new RegExp(`recorded at offset ${record} does not verify`) });
      await expect(reopened.tlogProof(0, 1)).rejects.toMatchObject({ code: 'ledger.tampered' });
      expect(await reopened.tlogProof(0, 2)).toContain(notes[1]!);
    } finally {
      await reopened.close();
    }
  });

  it('a checkpoint that cannot be signed fails its batch only, and the next append commits', async () => {
    const witness = createCosigner('robust.test/witness', ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(6)));
    let fail = false;
    const flaky: NoteSigner = {
      ...witness,
      sign(text) {
        if (fail) throw new Error('witness unavailable');
        return witness.sign(text);
      },
    };
    const ledger = await Ledger.open(freshDir(), { signer, witnesses: [flaky], checkpointInterval: 0 });
    try {
      fail = true;
      await expect(ledger.append(entry(0), { key: 'k0', checkpoint: true })).rejects.toMatchObject({ code: 'ledger.sign', message: /witness unavailable/ });
      expect(ledger.size).toBe(0);
      fail = false;
      expect(await ledger.append(entry(1), { key: 'k0', checkpoint: true })).toEqual({ index: 0 });
      expect(ledger.findByKey('k0')).toBe(0);
    } finally {
      await ledger.close();
    }
  });

  it('refuses a checkpoint interval setTimeout cannot wait for (it would publish after every append)', async () => {
    await expect(Ledger.open(freshDir(), { signer, checkpointInterval: 30 * 24 * 3600 * 1000 })).rejects.toMatchObject({ code: 'ledger.invalid-argument' });
  });

  it('reads after close are ledger.closed; file errors are ledger.io', async () => {
    const dir = freshDir();
    const ledger = await Ledger.open(dir, { signer, checkpointInterval: 0 });
    await ledger.append(entry(0));
    // A publication whose temporary directory became a file fails as ledger.io, and a retry works.
    rmSync(path.join(dir, 'tmp'), { recursive: true });
    writeFileSync(path.join(dir, 'tmp'), '');
    await expect(ledger.publishCheckpoint()).rejects.toMatchObject({ code: 'ledger.io' });
    rmSync(path.join(dir, 'tmp'));
    mkdirSync(path.join(dir, 'tmp'));
    await ledger.close();
    await expect(ledger.get(0)).rejects.toMatchObject({ code: 'ledger.closed' });
    await expect(ledger.tile('tile/entries/000.p/1')).rejects.toMatchObject({ code: 'ledger.closed' });

    const notADirectory = path.join(root, `file-${n++}`);
    writeFileSync(notADirectory, '');
    await expect(Ledger.open(notADirectory, { signer })).rejects.toMatchObject({ code: 'ledger.io' });
  });

  it('an export never replaces what appeared in its directory meanwhile: of two at once, one is ledger.export-exists', async () => {
    const ledger = await Ledger.open(freshDir(), { signer, checkpointInterval: 0 });
    try {
      for (let i = 0; i < 20; i++) await ledger.append(entry(i), { checkpoint: i % 5 === 0 });
      const out = path.join(root, `export-${n++}`);
      const results = await Promise.allSettled([
        exportLedger(ledger, out, { executorPublicKey: new Uint8Array(32), proofCheckpoint: 'earliest' }),
        exportLedger(ledger, out, { executorPublicKey: new Uint8Array(32).fill(1), proofCheckpoint: 'earliest' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'ledger.export-exists' } });
      // Each receipt's proof is against the earliest checkpoint that covers it.
      expect(readFileSync(path.join(out, 'receipts/3.tlog-proof'), 'utf8')).toContain('\n6\n');
      expect(readFileSync(path.join(out, 'receipts/7.tlog-proof'), 'utf8')).toContain('\n11\n');
    } finally {
      await ledger.close();
    }
  });
});
