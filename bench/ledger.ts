/**
 * Ledger benchmark (prints figures; not a test):
 *   1. durable appends/s with group commit (many concurrent appenders, fsync before every ack),
 *      then the same with a checkpoint signed into every commit and a tlog-proof per append
 *   2. inclusion proof generation time at 1,000,000 entries
 *   3. offline receipt verifications/s (tlog-proof + DSSE signature), one core
 * Usage: npm run bench:ledger [-- --seconds 2 --leaves 1000000]
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HashTree } from '../src/ledger/hash-tree.ts';
import { Ledger, ed25519PrivateKeyFromSeed, leafHash, verifyTlogProof } from '../src/ledger/index.ts';
import { IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE_V1, createReceiptSigner, encodeStatement, signDsse, verifyDsse } from '../src/receipts/index.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, leaves: { type: 'string', default: '1000000' }, concurrency: { type: 'string', default: '256' } } });
const seconds = Number(values.seconds);
const leafCount = Number(values.leaves);
const concurrency = Number(values.concurrency);

const executor = createReceiptSigner(ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(21)));
function receipt(i: number): Uint8Array {
  const digest = createHash('sha256').update(`output ${i}`).digest('hex');
  return signDsse(IN_TOTO_PAYLOAD_TYPE, encodeStatement({ _type: STATEMENT_TYPE_V1, subject: [{ name: `action/${i}`, digest: { sha256: digest } }], predicateType: 'https://attex.dev/bench/v1', predicate: { i, pad: 'x'.repeat(600) } }), executor);
}

const work = mkdtempSync(path.join(tmpdir(), 'attex-bench-ledger-'));
try {
  // 1. Durable appends with group commit.
  const prebuilt = Array.from({ length: 2048 }, (_, i) => receipt(i));
  const ledger = await Ledger.open(path.join(work, 'ledger'), { signer: { name: 'bench.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(22)) }, checkpointInterval: 1000 });
  let appended = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < deadline) {
        await ledger.append(prebuilt[(w * 7 + appended) % prebuilt.length]!);
        appended++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const stats = ledger.commitStats;
  console.log(`durable appends: ${Math.round(appended / elapsed)}/s (${appended} in ${elapsed.toFixed(2)} s, ${concurrency} concurrent appenders, ${stats.batches} fsync batches, ${(stats.records / stats.batches).toFixed(1)} records/batch, target >= 5000/s)`);

  // 1b. The executor's mode: every group commit also carries a checkpoint signed over it, and every
  // appender gets its tlog-proof (no further I/O) as soon as its append resolves.
  let proved = 0;
  const before = ledger.commitStats;
  const deadlineB = performance.now() + seconds * 1000;
  const startedB = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < deadlineB) {
        const { index } = await ledger.append(prebuilt[(w * 5 + proved) % prebuilt.length]!, { checkpoint: true });
        await ledger.tlogProof(index);
        proved++;
      }
    }),
  );
  const elapsedB = (performance.now() - startedB) / 1000;
  const batchesB = ledger.commitStats.batches - before.batches;
  console.log(`durable appends + checkpoint per commit + tlog-proof: ${Math.round(proved / elapsedB)}/s (${batchesB} fsync batches, each with its signed checkpoint, ${(proved / batchesB).toFixed(1)} entries/batch)`);

  // 3 (prepared here): receipts with tlog-proofs from this ledger.
  const proofs: { entry: Uint8Array; proof: string }[] = [];
  for (let i = 0; i < 200; i++) proofs.push({ entry: await ledger.get(i), proof: await ledger.tlogProof(i) });
  const logVerifierKey = ledger.verifierKey;
  await ledger.close();

  // 2. Inclusion proofs at 1,000,000 leaves (through the in-memory hash store the ledger integrates into).
  const tree = new HashTree();
  const buildStart = performance.now();
  const chunk: Uint8Array[] = [];
  const seed = Buffer.alloc(8);
  for (let i = 0; i < leafCount; i++) {
    seed.writeDoubleBE(i);
    chunk.push(leafHash(seed));
    if (chunk.length === 65_536) tree.append(chunk.splice(0));
  }
  tree.append(chunk);
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const proofRuns = 20_000;
  const proofStart = performance.now();
  for (let i = 0; i < proofRuns; i++) {
    const size = leafCount - (i % 1000);
    tree.inclusionProof(Math.floor(Math.random() * size), size);
  }
  const perProofMs = (performance.now() - proofStart) / proofRuns;
  console.log(`inclusion proof at ${leafCount} leaves: ${(perProofMs * 1000).toFixed(1)} µs per proof (tree of ${leafCount} built in ${buildSeconds.toFixed(2)} s; target <= 1 ms)`);

  // 3. Offline receipt verification: tlog-proof (checkpoint signature + inclusion) + DSSE signature.
  const rate = (label: string, verify: (i: number) => void) => {
    let count = 0;
    const end = performance.now() + (seconds * 1000) / 3;
    const start = performance.now();
    while (performance.now() < end) verify(count++);
    const perSecond = Math.round(count / ((performance.now() - start) / 1000));
    console.log(`offline ${label}: ${perSecond}/s on one core`);
    return perSecond;
  };
  rate('tlog-proof verifications (checkpoint Ed25519 via node:crypto + inclusion)', (i) => {
    const { entry, proof } = proofs[i % proofs.length]!;
    verifyTlogProof(proof, entry, { logVerifierKey });
  });
  rate('DSSE verifications (src/receipts verifyDsse)', (i) => verifyDsse(proofs[i % proofs.length]!.entry, executor.publicKeyRaw));
  rate('receipt verifications (tlog-proof + DSSE; target >= 3000/s)', (i) => {
    const { entry, proof } = proofs[i % proofs.length]!;
    verifyTlogProof(proof, entry, { logVerifierKey });
    verifyDsse(entry, executor.publicKeyRaw);
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
