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
    const hostMatches = g.wildcard ? host.endsWith(`.${g.host}`) : host === g.host;
    if (hostMatches) return { ...base, allowed: true, reason: 'granted', grant };
  }
  return { ...base, allowed: false, reason: `${origin} is not in the component's grant` };
}

function ipv4Octets(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** Why an address is special (not publicly routable), or undefined for a public address. */
export function specialAddressReason(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const [a, b, c] = ipv4Octets(ip) as [number, number, number, number];
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
    if (a >= 224) return 'multicast/reserved';
    return undefined;
  }
  if (family === 6) {
    const lower = ip.toLowerCase();
    const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped) return specialAddressReason(mapped[1]!) ?? undefined;
    if (lower === '::' ) return 'unspecified';
    if (lower === '::1') return 'loopback';
    if (/^fe[89ab]/.test(lower)) return 'link-local';
    if (/^f[cd]/.test(lower)) return 'unique local (private)';
    if (/^ff/.test(lower)) return 'multicast';
    if (/^fec0|^fed|^fee|^fef/.test(lower)) return 'site-local';
    if (/^64:ff9b:/.test(lower)) return 'NAT64';
    if (/^2001:db8:/.test(lower)) return 'documentation';
    if (/^::/.test(lower)) return 'IPv4-compatible/reserved';
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
