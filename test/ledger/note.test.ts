import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createCosigner,
  createNoteSigner,
  decodeEntryBundle,
  ed25519PrivateKeyFromSeed,
  formatCheckpoint,
  formatTlogProof,
  formatVerifierKey,
  leafHash,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseTlogProof,
  parseVerifierKey,
  rootHash,
  signNote,
  tileIndexPath,
  verifyConsistencyFile,
  verifyTlogProof,
  EMPTY_ROOT,
} from '../../src/ledger/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

// The c2sp.org/signed-note example.
const EXAMPLE_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const EXAMPLE_NOTE = 'This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

const seed = (n: number) => new Uint8Array(32).fill(n);
const logSigner = createNoteSigner('log.test/a', ed25519PrivateKeyFromSeed(seed(1)));
const logVkey = formatVerifierKey(logSigner.name, logSigner.publicKey);
const witness = createCosigner('witness.test/w', ed25519PrivateKeyFromSeed(seed(2)), () => new Date(1_767_229_500_000));
const witnessVkey = formatVerifierKey(witness.name, witness.publicKey, witness.type);

describe('signed notes', () => {
  it('opens the c2sp.org/signed-note example', () => {
    const opened = openNote(EXAMPLE_NOTE, [EXAMPLE_VKEY]);
    expect(opened.text).toBe('This is an example message.\n');
    expect(opened.verified).toEqual([{ name: 'example.com/foo', keyHash: 0x530d903a, type: 1 }]);
  });

  it('rejects a hyphen instead of the em dash, an edited text, and a note without a known signer', () => {
    expect(() => openNote(EXAMPLE_NOTE.replace('\u2014', '-'), [EXAMPLE_VKEY])).toThrow(expect.objectContaining({ code: 'ledger.note-malformed' }));
    expect(() => openNote(EXAMPLE_NOTE.replace('example message', 'exemple message'), [EXAMPLE_VKEY])).toThrow(expect.objectContaining({ code: 'ledger.note-bad-signature' }));
    expect(() => openNote(EXAMPLE_NOTE, [logVkey])).toThrow(expect.objectContaining({ code: 'ledger.note-unverified' }));
    expect(() => openNote('no blank line\n\u2014 x AAAAAAA=\n', [EXAMPLE_VKEY])).toThrow(expect.objectContaining({ code: 'ledger.note-malformed' }));
    expect(() => openNote(EXAMPLE_NOTE.replace('This', 'Th\ris'), [EXAMPLE_VKEY])).toThrow(expect.objectContaining({ code: 'ledger.note-malformed' }));
  });

  it('parses vkeys on their first two "+" only and checks the key ID', () => {
    const v = parseVerifierKey(EXAMPLE_VKEY);
    expect(v.name).toBe('example.com/foo');
    expect(v.keyHash).toBe(0x530d903a);
    // A base64 key containing '+' still parses (generate until one appears).
    for (let i = 3; i < 200; i++) {
      const s = createNoteSigner('plus.test', ed25519PrivateKeyFromSeed(seed(i)));
      const vkey = formatVerifierKey(s.name, s.publicKey);
      if (vkey.split('+').length > 3) {
        expect(parseVerifierKey(vkey).publicKey).toEqual(s.publicKey);
        break;
      }
    }
    expect(() => parseVerifierKey(EXAMPLE_VKEY.replace('530d903a', '00000000'))).toThrow(/does not match/);
    expect(() => parseVerifierKey('example.com/foo+530d903a')).toThrow(expect.objectContaining({ code: 'ledger.key-invalid' }));
    expect(() => parseVerifierKey('bad name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k')).toThrow(expect.objectContaining({ code: 'ledger.key-invalid' }));
  });

  it('ignores unknown signatures, verifies cosignatures with their timestamp, and refuses a bad one', () => {
    const note = signNote('hello\n', [logSigner, witness, createNoteSigner('other.test', ed25519PrivateKeyFromSeed(seed(9)))]);
    const opened = openNote(note, [logVkey, witnessVkey]);
    expect(opened.verified.map((s) => s.name)).toEqual(['log.test/a', 'witness.test/w']);
    expect(opened.verified[1]!.timestamp).toBe(1_767_229_500);
    expect(opened.unverified.map((s) => s.name)).toEqual(['other.test']);
    const lines = note.split('\n');
    const witnessLine = lines.findIndex((l) => l.includes('witness.test/w'));
    const sig = Buffer.from(lines[witnessLine]!.split(' ')[2]!, 'base64');
    sig[20]! ^= 1;
    lines[witnessLine] = `\u2014 witness.test/w ${sig.toString('base64')}`;
    expect(() => openNote(lines.join('\n'), [logVkey, witnessVkey])).toThrow(expect.objectContaining({ code: 'ledger.note-bad-signature' }));
    expect(openNote(lines.join('\n'), [logVkey]).verified).toHaveLength(1);
  });
});

describe('checkpoints and tlog-proofs', () => {
  const body = formatCheckpoint({ origin: 'log.test/a', size: 3, rootHash: rootHash([0, 1, 2].map((i) => leafHash(new Uint8Array([i])))), extensions: [] });

  it('formats and parses strictly', () => {
    expect(parseCheckpoint(body).size).toBe(3);
    for (const bad of [body.replace('\n3\n', '\n03\n'), body.replace('\n3\n', '\n+3\n'), body.slice(0, -1), body.replace('=\n', '\n'), `${body}\n`, 'o\n0\nAAAA\n']) {
      expect(() => parseCheckpoint(bad)).toThrow(expect.objectContaining({ code: 'ledger.checkpoint-malformed' }));
    }
    expect(parseCheckpoint(formatCheckpoint({ origin: 'x', size: 0, rootHash: EMPTY_ROOT, extensions: ['ext a'] })).extensions).toEqual(['ext a']);
  });

  it('opens a checkpoint by origin, log key and witness policy', () => {
    const note = signNote(body, [logSigner]);
    expect(openCheckpoint(note, { logVerifierKey: logVkey }).checkpoint.size).toBe(3);
    expect(() => openCheckpoint(note, { logVerifierKey: logVkey, origin: 'other' })).toThrow(expect.objectContaining({ code: 'ledger.checkpoint-origin' }));
    expect(() => openCheckpoint(note, { logVerifierKey: logVkey, witnessVerifierKeys: [witnessVkey], requireWitness: true })).toThrow(expect.objectContaining({ code: 'ledger.witness-missing' }));
    expect(() => openCheckpoint(signNote(body, [witness]), { logVerifierKey: logVkey, witnessVerifierKeys: [witnessVkey] })).toThrow(/not signed by the log key/);
  });

  it('round-trips a tlog-proof and rejects a wrong entry', () => {
    const leaves = [0, 1, 2].map((i) => leafHash(new Uint8Array([i])));
    const text = formatTlogProof({ index: 2, proof: [rootHash(leaves.slice(0, 2))], checkpoint: signNote(body, [logSigner, witness]), extra: new Uint8Array([1, 2]) });
    expect(parseTlogProof(text).extra).toEqual(new Uint8Array([1, 2]));
    const ok = verifyTlogProof(text, new Uint8Array([2]), { logVerifierKey: logVkey, witnessVerifierKeys: [witnessVkey], requireWitness: true });
    expect(ok.index).toBe(2);
    expect(() => verifyTlogProof(text, new Uint8Array([3]), { logVerifierKey: logVkey })).toThrow(expect.objectContaining({ code: 'ledger.proof-invalid' }));
    expect(() => verifyTlogProof(text.replace('index 2', 'index 02'), new Uint8Array([2]), { logVerifierKey: logVkey })).toThrow(expect.objectContaining({ code: 'ledger.proof-malformed' }));
    expect(() => verifyTlogProof(text.replace('index 2', 'index 3'), new Uint8Array([2]), { logVerifierKey: logVkey })).toThrow(expect.objectContaining({ code: 'ledger.proof-invalid' }));
  });
});

describe('the interop sample producer (independent implementation)', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'attex-ledger-sample-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('every tlog-proof, the consistency file and the tiles of its sample verify here', () => {
    execFileSync(process.execPath, [path.resolve(repoRoot, '../shared/interop/sample/gen.mjs'), out, '300', '100']);
    const vkey = readFileSync(path.join(out, 'trust/log.vkey'), 'utf8').trim();
    const wkey = readFileSync(path.join(out, 'trust/witness.vkey'), 'utf8').trim();
    for (let i = 0; i < 300; i++) {
      const proof = readFileSync(path.join(out, `receipts/${i}.tlog-proof`), 'utf8');
      const entry = readFileSync(path.join(out, `receipts/${i}.dsse.json`));
      expect(verifyTlogProof(proof, entry, { logVerifierKey: vkey, witnessVerifierKeys: [wkey], requireWitness: true }).index).toBe(i);
    }
    const current = openCheckpoint(readFileSync(path.join(out, 'log/checkpoint'), 'utf8'), { logVerifierKey: vkey, witnessVerifierKeys: [wkey], requireWitness: true });
    expect(verifyConsistencyFile(readFileSync(path.join(out, 'log/consistency'), 'utf8'), current.checkpoint, { logVerifierKey: vkey }).old.size).toBe(100);
    const entries = [
      ...decodeEntryBundle(readFileSync(path.join(out, `log/tile/entries/${tileIndexPath(0)}`))),
      ...decodeEntryBundle(readFileSync(path.join(out, `log/tile/entries/${tileIndexPath(1)}.p/44`))),
    ];
    expect(rootHash(entries.map(leafHash))).toEqual(current.checkpoint.rootHash);
    expect(tileIndexPath(1234067)).toBe('x001/x234/067');
  });
});
