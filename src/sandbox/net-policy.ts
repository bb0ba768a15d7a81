/**
 * Outbound HTTP policy, pure: does a URL match a manifest's origin grants, and may the host
 * connect to an address? Hostnames never reach loopback, private, link-local, CGNAT, metadata
 * or other special ranges; only a grant that names such an IP literal itself permits it.
 */
import { isIP } from 'node:net';

export interface OriginCheck {
  readonly allowed: boolean;
  readonly reason: string;
  /** The grant entry that matched. */
  readonly grant?: string;
  /** Host without brackets, lower case. */
  readonly host: string;
  readonly port: number;
  readonly origin: string;
}

/** Headers the host sets itself or that change framing: never taken from a guest. */
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([
  'host', 'connection', 'content-length', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'te', 'trailer', 'keep-alive', 'expect',
  // Read by proxies as routing instructions: behind one that trusts them they override the host.
  'proxy-connection', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-original-url', 'x-rewrite-url',
]);

/** A lower-case header name a guest may set (an RFC 9110 token, not in FORBIDDEN_HEADERS). */
export function isGuestHeaderName(name: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9a-z-]{1,128}$/.test(name) && !FORBIDDEN_HEADERS.has(name);
}

function defaultPort(scheme: string): number {
  return scheme === 'https:' ? 443 : 80;
}

function parseGrant(grant: string): { scheme: string; host: string; wildcard: boolean; port: number } | undefined {
  const m = /^(https?):\/\/(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(grant);
  if (!m) return undefined;
  const scheme = `${m[1]!.toLowerCase()}:`;
  const host = m[3]!.toLowerCase().replace(/^\[|\]$/g, '');
  return { scheme, host, wildcard: m[2] !== undefined, port: m[4] ? Number(m[4]) : defaultPort(scheme) };
}

/** Check a request URL against origin grants (scheme, host or `*.` suffix, and port all match). */
export function checkOrigin(rawUrl: string, grants: readonly string[]): OriginCheck {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return { allowed: false, reason: 'not a valid URL', host: '', port: 0, origin: '' };
  }
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : defaultPort(url.protocol);
  const origin = `${url.protocol}//${url.host}`;
  const base = { host, port, origin };
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ...base, allowed: false, reason: `scheme ${url.protocol} is not allowed` };
  if (url.username || url.password) return { ...base, allowed: false, reason: 'credentials in URL are not allowed' };
  for (const grant of grants) {
    const g = parseGrant(grant);
    if (!g || g.scheme !== url.protocol || g.port !== port) continue;
    // `*.` stands for at least one label: `.example.com` itself is not under `*.example.com`.
    const hostMatches = g.wildcard ? host.length > g.host.length + 1 && host.endsWith(`.${g.host}`) : host === g.host;
    if (hostMatches) return { ...base, allowed: true, reason: 'granted', grant };
  }
  return { ...base, allowed: false, reason: `${origin} is not in the component's grant` };
}

function ipv4Octets(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** The 16 bytes of an IPv6 address in any textual form (`::` compression, a dotted IPv4 tail, a zone). */
function ipv6Bytes(text: string): number[] | undefined {
  const ip = text.split('%')[0]!.toLowerCase();
  let groups: string[];
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  let head = ip;
  let v4: number[] = [];
  if (tail) {
    if (isIP(tail[2]!) !== 4) return undefined;
    v4 = ipv4Octets(tail[2]!);
    head = tail[1]!.endsWith('::') ? tail[1]! : tail[1]!.slice(0, -1);
  }
  const want = tail ? 6 : 8;
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  if (halves.length === 2) {
    const left = parse(halves[0]!);
    const right = parse(halves[1]!);
    if (left.length + right.length > want - 1) return undefined;
    groups = [...left, ...Array<string>(want - left.length - right.length).fill('0'), ...right];
  } else {
    groups = parse(head);
  }
  if (groups.length !== want || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return [...groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]), ...v4];
}

/** Why an address is special (not publicly routable), or undefined for a public address. */
export function specialAddressReason(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const [a, b, c, d] = ipv4Octets(ip) as [number, number, number, number];
    if (a === 0) return 'unspecified/this-network';
    if (a === 10) return 'private (10/8)';
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local / cloud metadata';
    if (a === 172 && b >= 16 && b <= 31) return 'private (172.16/12)';
    if (a === 192 && b === 168) return 'private (192.168/16)';
    if (a === 100 && b >= 64 && b <= 127) return 'carrier-grade NAT';
    if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved (192.0.0/24, 192.0.2/24)';
    if (a === 198 && (b === 18 || b === 19)) return 'benchmarking (198.18/15)';
    if (a === 198 && b === 51 && c === 100) return 'documentation';
    if (a === 203 && b === 0 && c === 113) return 'documentation';
    if (a === 192 && b === 88 && c === 99) return 'reserved (192.88.99/24, former 6to4 relays)';
    // The Azure host's wire server and DNS (168.63.129.16/32): reachable from every Azure VM, AKS
    // nodes included, and as sensitive as the metadata endpoint.
    if (a === 168 && b === 63 && c === 129 && d === 16) return 'Azure platform (wire server)';
    if (a >= 224) return 'multicast/reserved';
    return undefined;
  }
  if (family === 6) {
    const b = ipv6Bytes(ip);
    if (!b) return 'not an IP address';
    const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
    const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
    // By value, not by text: `0:0:0:0:0:0:0:1`, `::0001` and `::1` are the same address.
    if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return specialAddressReason(v4(12)) ?? undefined; // IPv4-mapped
    if (zeros(0, 16)) return 'unspecified';
    if (zeros(0, 15) && b[15] === 1) return 'loopback';
    if (zeros(0, 12)) return 'IPv4-compatible/reserved';
    if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local';
    if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return 'site-local';
    if ((b[0]! & 0xfe) === 0xfc) return 'unique local (private)';
    if (b[0] === 0xff) return 'multicast';
    if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) return 'NAT64';
    if (b[0] === 0x01 && zeros(1, 8)) return 'discard-only (100::/64)';
    if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return 'documentation';
    if (b[0] === 0x20 && b[1] === 0x01 && zeros(2, 4)) return 'Teredo (2001::/32)';
    if (b[0] === 0x20 && b[1] === 0x01 && b[2]! < 0x02) return 'IETF protocol assignments (2001::/23)';
    if (b[0] === 0x3f && b[1] === 0xff && (b[2]! & 0xf0) === 0) return 'documentation (3fff::/20)';
    if (b[0] === 0x20 && b[1] === 0x02) {
      const carried = specialAddressReason(v4(2));
      return carried === undefined ? undefined : `6to4 of a ${carried} address`;
    }
    // Everything public is global unicast; the rest (e.g. 5f00::/16 segment routing) is not.
    if ((b[0]! & 0xe0) !== 0x20) return 'reserved (outside global unicast 2000::/3)';
    return undefined;
  }
  return 'not an IP address';
}

/**
 * May the host connect to `ip` for a request whose URL host is `urlHost`? A special address is
 * allowed only when the URL host is that very IP literal and the grant names it.
 */
export function checkAddress(ip: string, urlHost: string, grant: string | undefined): { allowed: boolean; reason: string } {
  const special = specialAddressReason(ip);
  if (special === undefined) return { allowed: true, reason: 'public address' };
  const literalGranted = grant !== undefined && isIP(urlHost) !== 0 && urlHost === ip && !grant.includes('*.');
  if (literalGranted) return { allowed: true, reason: `${special} address granted explicitly` };
  return { allowed: false, reason: `${urlHost} resolves to a ${special} address` };
}
