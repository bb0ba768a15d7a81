import { openSimulatedTee } from '../../../src/attestation/sim/index.ts';
import { verifySnp } from '../../../src/attestation/snp/index.ts';
const t0 = Date.now();
const sim = await openSimulatedTee('/tmp/attex-sim-smoke');
console.log('open ms', Date.now() - t0);
const rd = new Uint8Array(64).fill(7);
for (const [version, product] of [[3,'Milan'],[5,'Genoa'],[5,'Turin']] as const) {
  const pkg = await sim.snpEvidence(rd, { version, product });
  for (const allow of [true, false]) {
    const r = await verifySnp({ evidence: Buffer.from(pkg.evidence, 'base64'), vekCert: Buffer.from(pkg.certs![0]!, 'base64'), trust: { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated: allow }, now: new Date() });
    console.log(version, product, allow, r.outcome, r.tee, r.simulated, JSON.stringify(r.reasons));
  }
}
