/**
 * The SEV-SNP extended-report certificate table (GHCB specification, MSG_REPORT_REQ extended):
 * 24-byte entries {GUID, u32 offset, u32 length} ended by an all-zero entry, offsets relative to
 * the table start. configfs-tsm exposes it as `auxblob`. The host fills it: treat it as hostile.
 */
import { AttexError } from '../../errors/index.ts';
import { fromHex, toHex } from '../../util/index.ts';

export const CERT_TABLE_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

export type CertTableRole = keyof typeof CERT_TABLE_GUIDS | 'unknown';

export interface CertTableEntry {
  readonly guid: string;
  readonly role: CertTableRole;
  readonly cert: Uint8Array;
}

const ENTRY_SIZE = 24;
/** Entries, not counting the all-zero terminator. */
const MAX_ENTRIES = 64;
/** An AMD certificate is ~1.3-1.6 KB; an entry far larger is not one. */
const MAX_CERT_BYTES = 16 * 1024;

/** GUID text from 16 bytes stored in RFC 4122 (big-endian) order, as AMD's tools write it. */
function guidText(bytes: Uint8Array): string {
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The same GUID from a little-endian (Microsoft/UEFI guid_t) encoding of the first three fields. */
function mixedEndianGuidText(bytes: Uint8Array): string {
  const swapped = Uint8Array.from([
    bytes[3]!, bytes[2]!, bytes[1]!, bytes[0]!, bytes[5]!, bytes[4]!, bytes[7]!, bytes[6]!, ...bytes.subarray(8, 16),
  ]);
  return guidText(swapped);
}

function roleOf(guid: string): CertTableRole {
  for (const [role, known] of Object.entries(CERT_TABLE_GUIDS)) if (known === guid) return role as CertTableRole;
  return 'unknown';
}

function malformed(message: string): AttexError {
  return new AttexError('provider.malformed', `SNP certificate table: ${message}`);
}

export function parseCertTable(table: Uint8Array): CertTableEntry[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: CertTableEntry[] = [];
  for (let i = 0; ; i++) {
    const at = i * ENTRY_SIZE;
    if (at + ENTRY_SIZE > table.length) throw malformed('no terminating all-zero entry');
    const entry = table.subarray(at, at + ENTRY_SIZE);
    if (entry.every((b) => b === 0)) return out;
    if (i >= MAX_ENTRIES) throw malformed(`more than ${MAX_ENTRIES} entries`);
    const guidBytes = entry.subarray(0, 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (offset < at + ENTRY_SIZE || length === 0 || offset + length > table.length) {
      throw malformed(`entry ${i} points outside the table (offset ${offset}, length ${length})`);
    }
    if (length > MAX_CERT_BYTES) throw malformed(`entry ${i} is ${length} bytes, more than a certificate (${MAX_CERT_BYTES})`);
    let guid = guidText(guidBytes);
    let role = roleOf(guid);
    if (role === 'unknown') {
      const alt = mixedEndianGuidText(guidBytes);
      if (roleOf(alt) !== 'unknown') [guid, role] = [alt, roleOf(alt)];
    }
    out.push({ guid, role, cert: table.slice(offset, offset + length) });
  }
}

/** Build a table (used by tests and the simulator's fake kernel). */
export function buildCertTable(entries: ReadonlyArray<{ guid: string; cert: Uint8Array }>): Uint8Array {
  const headerSize = (entries.length + 1) * ENTRY_SIZE;
  const total = headerSize + entries.reduce((n, e) => n + e.cert.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = headerSize;
  entries.forEach((e, i) => {
    out.set(fromHex(e.guid.replaceAll('-', '')), i * ENTRY_SIZE);
    view.setUint32(i * ENTRY_SIZE + 16, offset, true);
    view.setUint32(i * ENTRY_SIZE + 20, e.cert.length, true);
    out.set(e.cert, offset);
    offset += e.cert.length;
  });
  return out;
}
