/**
 * Resource paths `<repository>/<type>/<tag>` (Trustee's secret resource URL) and the globs the
 * resource policy matches them with. Segments are deliberately narrow: no dots-only segments,
 * no slashes, no percent-encoding games, so a path maps to exactly one store record.
 */
import { AttexError } from '../errors/index.ts';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const GLOB_SEGMENT = /^[A-Za-z0-9_.*?-]{1,128}$/;

export interface ResourcePath {
  readonly repository: string;
  readonly type: string;
  readonly tag: string;
}

export function isResourceSegment(segment: string): boolean {
  return SEGMENT.test(segment);
}

/** Parse `repo/type/tag`; throws AttexError `broker.resource-path` for anything else. */
export function parseResourcePath(path: string): ResourcePath {
  const parts = path.split('/');
  if (parts.length !== 3 || !parts.every(isResourceSegment)) {
    throw new AttexError('broker.resource-path', 'a resource path is <repository>/<type>/<tag>, each segment [A-Za-z0-9._-], 1-128 characters, not starting with a dot or dash');
  }
  const [repository, type, tag] = parts as [string, string, string];
  return { repository, type, tag };
}

export function formatResourcePath(p: ResourcePath): string {
  return `${p.repository}/${p.type}/${p.tag}`;
}

export function isResourceGlob(glob: string): boolean {
  const parts = glob.split('/');
  return parts.length === 3 && parts.every((p) => GLOB_SEGMENT.test(p));
}

/** Segment-wise glob: `*` any run of characters within a segment, `?` one character. */
export function globMatches(glob: string, path: string): boolean {
  const g = glob.split('/');
  const p = path.split('/');
  if (g.length !== 3 || p.length !== 3) return false;
  return g.every((seg, i) => segmentMatches(seg, p[i]!));
}

function segmentMatches(glob: string, segment: string): boolean {
  // Iterative wildcard match (no regex built from policy text, no backtracking blow-up).
  let gi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < segment.length) {
    const gc = glob[gi];
    if (gc === '?' || (gc !== undefined && gc !== '*' && gc === segment[si])) {
      gi++;
      si++;
    } else if (gc === '*') {
      star = gi++;
      mark = si;
    } else if (star >= 0) {
      gi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (glob[gi] === '*') gi++;
  return gi === glob.length;
}
