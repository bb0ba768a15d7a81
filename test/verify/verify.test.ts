import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadPolicy } from '../../src/attestation/appraisal/index.ts';
import type { EvidencePackage } from '../../src/attestation/evidence/package.ts';
import { Ledger } from '../../src/ledger/store.ts';
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { reportDataFor } from '../../src/attestation/binding/index.ts';
import { makeEvidencePackage } from '../../src/attestation/evidence/package.ts';
import { SIM_TCB } from '../../src/attestation/sim/pki.ts';
import { SIM_GUEST_POLICY, buildSnpReport } from '../../src/attestation/sim/snp-report.ts';
import { loadOrCreateState } from '../../src/attestation/sim/store.ts';
import { IN_TOTO_PAYLOAD_TYPE, buildAttestationRecordStatement, buildExecutionStatement, createReceiptSigner, executorRuntimeData, signDsse, signStatement, verifyDsse } from '../../src/receipts/index.ts';
import { canonicalJson } from '../../src/util/index.ts';
import { type BundleVerification, type VerifyTrust, verifyBundle } from '../../src/verify/index.ts';
import { LOG_NAME, type World, attestationRecord, bundleFor, issueReceipt, openWorld, receiptParams, teePublicJwk } from './world.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let w: World;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'attex-verify-'));
  w = await openWorld(dir);
});
afterAll(async () => {
  await w?.close();
  rmSync(dir, { recursive: true, force: true });
});

function failedStep(v: BundleVerification): { step: string; code: string | undefined; message: string } | undefined {
  const f = v.steps.find((s) => !s.ok);
  return f && { step: f.step, code: f.code, message: f.message };
}

function withJson(text: string, edit: (j: Record<string, any>) => void): string {
  const j = JSON.parse(text);
  edit(j);
  return JSON.stringify(j);
}

describe('verifyBundle', () => {
  it('verifies a bundle built end to end with a real ledger and simulated TEE evidence', async () => {
    const { text, index } = await issueReceipt(w);
    const v = await verifyBundle(new TextEncoder().encode(text), w.trust);
    expect(failedStep(v)).toBeUndefined();
    expect(v.verified).toBe(true);
    expect(v.steps.map((s) => s.step)).toEqual(['bundle', 'checkpoint', 'inclusion', 'receipt', 'attestation-record', 'evidence']);
    expect(v.receipt?.caller.id).toBe('agent:billing-bot');
    expect(v.log).toMatchObject({ origin: LOG_NAME, index, recordIndex: 0 });
    expect(v.evidence).toMatchObject({ tee: 'sim-snp', simulated: true });
    // Also accepts the parsed JSON and a string.
    expect((await verifyBundle(JSON.parse(text), w.trust)).verified).toBe(true);
    expect((await verifyBundle(text, w.trust)).verified).toBe(true);
  });

  it('refuses simulated evidence unless allowSimulated', async () => {
    const { text } = await issueReceipt(w);
    const strict: VerifyTrust = { ...w.trust, allowSimulated: false, evidence: { ...w.trust.evidence, allowSimulated: false } };
    const v = await verifyBundle(text, strict);
    expect(v.verified).toBe(false);
    expect(failedStep(v)).toMatchObject({ step: 'evidence', code: 'verify.simulated' });
    expect(failedStep(v)!.message).toMatch(/simulated/i);
  });

  it('applies an appraisal policy: the dev-simulated policy passes (warning), the default policy refuses simulated evidence', async () => {
    const { text } = await issueReceipt(w);
    const dev = loadPolicy(readFileSync(path.join(repoRoot, 'attestation/policies/dev-simulated.json'), 'utf8'));
    const ok = await verifyBundle(text, { ...w.trust, appraisalPolicy: dev });
    expect(failedStep(ok)).toBeUndefined();
    expect(ok.evidence?.appraisal).toBe('warning');
    const strict = loadPolicy(readFileSync(path.join(repoRoot, 'attestation/policies/default.json'), 'utf8'));
    const refused = await verifyBundle(text, { ...w.trust, appraisalPolicy: strict });
    expect(failedStep(refused)).toMatchObject({ step: 'evidence', code: 'verify.appraisal' });
  });

  it('rejects a re-serialized envelope (same JSON value, different bytes) at inclusion', async () => {
    const { text } = await issueReceipt(w);
    const tampered = withJson(text, (j) => {
      const env = Buffer.from(j.receipt, 'base64').toString('utf8').replace('"payloadType"', '"payloadTyp\\u0065"');
      expect(JSON.parse(env).payloadType).toBe('application/vnd.in-toto+json');
      j.receipt = Buffer.from(env).toString('base64');
    });
    expect(failedStep(await verifyBundle(tampered, w.trust))).toMatchObject({ step: 'inclusion', code: 'verify.inclusion' });
  });

  it('rejects a wrong inclusion proof', async () => {
    await issueReceipt(w); // make the tree big enough for a multi-hash path
    const { text } = await issueReceipt(w);
    const tampered = withJson(text, (j) => {
      const lines = (j.proof as string).split('\n');
      const at = lines.findIndex((l) => /^[A-Za-z0-9+/]{43}=$/.test(l));
      expect(at).toBeGreaterThan(0);
      const h = Buffer.from(lines[at]!, 'base64');
      h[0]! ^= 1;
      lines[at] = h.toString('base64');
      j.proof = lines.join('\n');
    });
    expect(failedStep(await verifyBundle(tampered, w.trust))).toMatchObject({ step: 'inclusion', code: 'verify.inclusion' });
    // And a proof for another index.
    const other = withJson(text, (j) => {
      j.proof = (j.proof as string).replace(/^index (\d+)$/m, (_m, n) => `index ${Number(n) - 1}`);
    });
    expect(failedStep(await verifyBundle(other, w.trust))?.step).toBe('inclusion');
  });

  it('rejects a checkpoint from another log: other key, same name', async () => {
    const other = await Ledger.open(path.join(dir, 'other-key'), { signer: { name: LOG_NAME, privateKey: generateKeyPairSync('ed25519').privateKey }, checkpointInterval: 0 });
    try {
      const { text, envelope } = await issueReceipt(w);
      const { index } = await other.append(envelope);
      const foreign = withJson(text, (j) => {
        j.proof = '';
      });
      const proof = await other.tlogProof(index);
      const v = await verifyBundle(withJson(foreign, (j) => (j.proof = proof)), w.trust);
      expect(failedStep(v)).toMatchObject({ step: 'checkpoint', code: 'verify.checkpoint' });
      expect(failedStep(v)!.message).toMatch(/ledger\.note-unverified/);
    } finally {
      await other.close();
    }
  });

  it('rejects a checkpoint from another log: same key, other origin', async () => {
    // A second log signed by a key named like ours but publishing another origin.
    const key = generateKeyPairSync('ed25519').privateKey;
    const other = await Ledger.open(path.join(dir, 'other-origin'), { signer: { name: LOG_NAME, privateKey: key }, origin: 'evil.example/log', checkpointInterval: 0 });
    try {
      const { text, envelope } = await issueReceipt(w);
      const { index } = await other.append(envelope);
      const proof = await other.tlogProof(index);
      const trust: VerifyTrust = { ...w.trust, logVerifierKey: other.verifierKey };
      const v = await verifyBundle(withJson(text, (j) => (j.proof = proof)), trust);
      expect(failedStep(v)).toMatchObject({ step: 'checkpoint', code: 'verify.checkpoint' });
      expect(failedStep(v)!.message).toMatch(/origin/);
    } finally {
      await other.close();
    }
  });

  it('rejects a receipt signed by another executor key than the attested one', async () => {
    const rogue = createReceiptSigner();
    // Self-consistent receipt by the rogue key, pointing at the genuine attestation record.
    const env = signStatement(buildExecutionStatement(receiptParams(w, {}, rogue.publicKeyRaw)), rogue);
    const { text } = await bundleFor(w, env);
    expect(failedStep(await verifyBundle(text, w.trust))).toMatchObject({ step: 'attestation-record', code: 'verify.record-signature' });
    // A receipt naming the attested key but signed by the rogue key.
    const env2 = signStatement(buildExecutionStatement(receiptParams(w)), rogue);
    const b2 = await bundleFor(w, env2);
    expect(failedStep(await verifyBundle(b2.text, w.trust))).toMatchObject({ step: 'receipt', code: 'verify.receipt-signature' });
  });

  it('rejects an attestation record whose evidence binds another key', async () => {
    const signer = createReceiptSigner();
    const rec = await attestationRecord(w.tee, signer, w.teeJwk, createReceiptSigner().publicKeyRaw);
    const { index } = await w.ledger.append(rec.envelope);
    const record = { envelope: rec.envelope, index, evidenceDigest: rec.evidenceDigest };
    const params = receiptParams(w, {}, signer.publicKeyRaw);
    const env = signStatement(buildExecutionStatement({ ...params, attestation: { ...params.attestation, evidenceDigest: rec.evidenceDigest, recordLogIndex: index } }), signer);
    const { text } = await bundleFor(w, env, record);
    const v = await verifyBundle(text, w.trust);
    expect(failedStep(v)).toMatchObject({ step: 'attestation-record', code: 'verify.binding' });
  });

  it('a record whose evidence is rejected fails as evidence (verify.evidence), not as a binding', async () => {
    const signer = createReceiptSigner();
    // One bit of the signed report data flipped: the binding cannot hold, but the first thing
    // wrong is that the report's signature does not verify.
    const flipReportData = (e: EvidencePackage): EvidencePackage => {
      const report = Buffer.from(e.evidence, 'base64');
      report[0x50]! ^= 1;
      return { ...e, evidence: report.toString('base64') };
    };
    const rec = await attestationRecord(w.tee, signer, w.teeJwk, signer.publicKeyRaw, flipReportData);
    const { index } = await w.ledger.append(rec.envelope);
    const params = receiptParams(w, {}, signer.publicKeyRaw);
    const env = signStatement(buildExecutionStatement({ ...params, attestation: { ...params.attestation, evidenceDigest: rec.evidenceDigest, recordLogIndex: index } }), signer);
    const { text } = await bundleFor(w, env, { envelope: rec.envelope, index, evidenceDigest: rec.evidenceDigest });
    const v = await verifyBundle(text, w.trust);
    expect(failedStep(v)).toMatchObject({ step: 'attestation-record', code: 'verify.evidence', message: expect.stringMatching(/snp\.report-signature/) });
  });

  it('without an appraisal policy, the baseline still refuses a debuggable guest and a report from VMPL 3', async () => {
    const state = await loadOrCreateState(path.join(dir, 'sim'));
    const nonce = 'broker-nonce-0001';
    const reportData = reportDataFor(executorRuntimeData(nonce, w.teeJwk, w.signer.publicKeyRaw) as unknown as Record<string, unknown>);
    const vcek = [new Uint8Array(new X509Certificate(state.certs['vcek_milan']!).rawData)];
    for (const [label, extra, reason] of [['debug', { policy: SIM_GUEST_POLICY | (1n << 19n) }, /appraisal\.debug/], ['vmpl 3', { vmpl: 3 }, /appraisal\.vmpl/]] as const) {
      const report = buildSnpReport({ version: 3, product: 'Milan', reportData, measurement: w.tee.measurement, chipId: state.chipId, tcb: SIM_TCB.Milan, vcekKey: state.keys['vcek_milan']!, ...extra });
      const evidence = makeEvidencePackage({ kind: 'snp', evidence: report, certs: vcek });
      const statement = buildAttestationRecordStatement({ executor: { id: 'executor-a', version: '0.1.0' }, receiptKey: w.signer.publicKeyRaw, teePublicKey: w.teeJwk, nonce, evidence, createdAt: new Date() });
      const envelope = signStatement(statement, w.signer);
      const { index } = await w.ledger.append(envelope);
      const evidenceDigest = statement.subject[0]!.digest.sha256!;
      const params = receiptParams(w);
      const receipt = signStatement(buildExecutionStatement({ ...params, attestation: { ...params.attestation, evidenceDigest, recordLogIndex: index } }), w.signer);
      const { text } = await bundleFor(w, receipt, { envelope, index, evidenceDigest });
      expect(w.trust.appraisalPolicy).toBeUndefined();
      expect(failedStep(await verifyBundle(text, w.trust)), label).toMatchObject({ step: 'evidence', code: 'verify.appraisal', message: expect.stringMatching(reason) });
    }
    // The genuine record passes the baseline, appraised as a simulated TEE can be at best.
    expect(await verifyBundle((await issueReceipt(w)).text, w.trust)).toMatchObject({ verified: true, evidence: { appraisal: 'warning' } });
  });

  it('refuses receipts whose signed fields contradict each other, or that come from the future', async () => {
    // Forged with the genuine key (the builder itself refuses these): a broken executor or a
    // stolen key, not a valid receipt.
    const forged = async (edit: (statement: Record<string, any>) => string | void, options = {}) => {
      const statement = buildExecutionStatement(receiptParams(w), options) as unknown as Record<string, any>;
      const text = edit(statement) ?? canonicalJson(statement);
      return (await bundleFor(w, signDsse(IN_TOTO_PAYLOAD_TYPE, new TextEncoder().encode(text), w.signer))).text;
    };
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const cases: Array<[(st: Record<string, any>) => string | void, string, RegExp, object?]> = [
      [(st) => void Object.assign(st['predicate'], { startedAt: at(2000), finishedAt: at(1000) }), 'verify.receipt-statement', /finishedAt is before startedAt/],
      [(st) => void Object.assign(st['predicate'], { startedAt: '2026-02-31T00:00:00.000Z' }), 'verify.receipt-statement', /real RFC 3339/],
      [(st) => void (st['predicate'].outcome = 'error'), 'verify.receipt-statement', /errorCode/],
      [(st) => void (st['predicate'].capabilities.used.secrets = ['root-password']), 'verify.receipt-statement', /root-password/],
      [(st) => void (st['predicate'].capabilities.used.hosts = ['api.stripe.com', 'exfil.example.net']), 'verify.receipt-statement', /used host 'exfil.example.net' is not in the grant/],
      [(st) => void (st['predicate'].capabilities.used.hosts = ['api.stripe.com:8443']), 'verify.receipt-statement', /used host 'api.stripe.com:8443'/],
      [(st) => void st['subject'].push({ name: 'input', digest: st['predicate'].input.digest }), 'verify.receipt-statement', /exactly one subject/],
      [(st) => void Object.assign(st['predicate'], { startedAt: '2020-01-01T00:00:00.000Z', finishedAt: '2020-01-01T00:00:01.000Z' }), 'verify.record-statement', /before its executor's attestation record/],
      [(st) => void Object.assign(st['predicate'].output, { content: Buffer.from('{"total":999}').toString('base64'), bytes: 13 }), 'verify.receipt-statement', /does not hash to output.digest/, { includeOutput: true }],
      [(st) => JSON.stringify(st, null, 2), 'verify.receipt-statement', /canonical JSON/],
    ];
    for (const [edit, code, message, options] of cases) {
      expect(failedStep(await verifyBundle(await forged(edit, options), w.trust)), String(message)).toMatchObject({ code, message: expect.stringMatching(message) });
    }
    const later = new Date(Date.now() + 3600_000);
    const { text } = await issueReceipt(w, { startedAt: later, finishedAt: later });
    expect(failedStep(await verifyBundle(text, w.trust, { now: new Date() }))).toMatchObject({ step: 'receipt', code: 'verify.receipt-time' });
    // The same receipt verifies for a verifier whose clock is an hour ahead.
    expect((await verifyBundle(text, w.trust, { now: new Date(later.getTime() + 1000) })).verified).toBe(true);
  });

  it('refuses an attestation record dated in the future, or whose TEE key is not the one its evidence binds', async () => {
    const recordFor = async (edit: (predicate: Record<string, any>) => void) => {
      const rec = await attestationRecord(w.tee, w.signer, w.teeJwk);
      const { payload } = verifyDsse(rec.envelope, w.signer.publicKeyRaw);
      const statement = JSON.parse(new TextDecoder().decode(payload)) as Record<string, any>;
      edit(statement['predicate']);
      const envelope = signDsse(IN_TOTO_PAYLOAD_TYPE, new TextEncoder().encode(canonicalJson(statement)), w.signer);
      const { index } = await w.ledger.append(envelope);
      const params = receiptParams(w);
      const receipt = signStatement(buildExecutionStatement({ ...params, attestation: { ...params.attestation, recordLogIndex: index } }), w.signer);
      return (await bundleFor(w, receipt, { envelope, index, evidenceDigest: rec.evidenceDigest })).text;
    };
    // A record dated an hour ahead postdates every receipt of now: refused whatever the clock.
    const future = await recordFor((p) => void (p['createdAt'] = new Date(Date.now() + 3600_000).toISOString()));
    expect(failedStep(await verifyBundle(future, w.trust))).toMatchObject({ step: 'attestation-record', code: 'verify.record-statement' });
    const otherKey = await recordFor((p) => void (p['keys'].teePublicKey = teePublicJwk()));
    expect(failedStep(await verifyBundle(otherKey, w.trust))).toMatchObject({ step: 'attestation-record', code: 'verify.record-statement', message: expect.stringMatching(/teePublicKey/) });
    const impossible = await recordFor((p) => void (p['createdAt'] = '2026-02-31T00:00:00.000Z'));
    expect(failedStep(await verifyBundle(impossible, w.trust))).toMatchObject({ step: 'attestation-record', code: 'verify.record-statement', message: expect.stringMatching(/createdAt/) });
  });

  it('rejects a receipt whose recordLogIndex is not the bundled record', async () => {
    const { text } = await issueReceipt(w, {
      attestation: { ...receiptParams(w).attestation, recordLogIndex: 1 },
    });
    expect(failedStep(await verifyBundle(text, w.trust))).toMatchObject({ step: 'attestation-record', code: 'verify.record-index' });
  });

  it('rejects a pinned-key mismatch and a required witness that is absent', async () => {
    const { text } = await issueReceipt(w);
    const pinned = await verifyBundle(text, { ...w.trust, executorKeys: [createReceiptSigner().publicKeyRaw] });
    expect(failedStep(pinned)).toMatchObject({ step: 'receipt', code: 'verify.executor-key' });
    const witness = `witness.example+00000000+${Buffer.concat([Buffer.from([4]), Buffer.alloc(32, 9)]).toString('base64')}`;
    const v = await verifyBundle(text, { ...w.trust, witnessVerifierKeys: [witness], requireWitness: true });
    expect(failedStep(v)?.step).toBe('checkpoint');
  });

  it('rejects a truncated bundle file and garbage JSON at the bundle step', async () => {
    const { text } = await issueReceipt(w);
    for (const input of [text.slice(0, text.length - 10), 'garbage{', '{"mediaType":"application/vnd.attex.bundle.v1+json"}', '[]', '', new Uint8Array([0xff, 0xfe]), 42, null]) {
      const v = await verifyBundle(input, w.trust);
      expect(v.verified).toBe(false);
      expect(failedStep(v)).toMatchObject({ step: 'bundle', code: 'verify.bundle-malformed' });
      expect(v.steps.slice(1).every((s) => s.code === 'verify.not-run')).toBe(true);
    }
    const wrongType = withJson(text, (j) => (j.mediaType = 'application/json'));
    expect(failedStep(await verifyBundle(wrongType, w.trust))?.step).toBe('bundle');
  });
});
