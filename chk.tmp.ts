import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { loadTrustStore, makeEvidencePackage, verifyEvidence, loadCollateralDir, detectEvidenceKind } from '/work/main/src/attestation/index.ts';
const V = '/work/shared/vectors';
const exp = JSON.parse(readFileSync(`${V}/expected.json`, 'utf8'));
const trust = await loadTrustStore({ allowSimulated: false });
for (const [name, v] of Object.entries<any>(exp.vectors)) {
  const dir = `${V}/${name}`;
  const files = readdirSync(dir);
  const ev = readFileSync(`${dir}/${files.find(f => f.endsWith('.bin'))}`);
  const cert = files.find(f => f.endsWith('.der'));
  const kind = detectEvidenceKind(ev)!;
  const pkg = makeEvidencePackage({ kind, evidence: ev, certs: cert ? [readFileSync(`${dir}/${cert}`)] : [], ...(existsSync(`${dir}/collateral`) && { collateral: await loadCollateralDir(`${dir}/collateral`) }) });
  const r = await verifyEvidence(pkg, { trust, now: new Date(v.now) });
  const diffs = Object.keys(v.fields).filter(k => !isDeepStrictEqual(r.fields[k], v.fields[k]));
  console.log(name, kind === v.kind, r.outcome, v.expected.outcome, r.tcb_status, v.expected.tcb_status, JSON.stringify(r.advisory_ids), 'diffs:', diffs, r.reasons.map(x => x.code));
  for (const d of diffs) console.log('   ', d, JSON.stringify(r.fields[d]), JSON.stringify(v.fields[d]));
}
