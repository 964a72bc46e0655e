/**
 * The glob(3) subset nginx's `include` uses: `*`, `?` and `[...]` (with `[!...]` / `[^...]`) in any
 * path segment, `\` escaping the next character. Like glob(3), wildcards do not match a leading
 * dot, and results are sorted. Only regular files are returned.
 */
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';

/** True when an include path is a pattern rather than a file name (nginx: strpbrk(path, "*?[")). */
export function hasGlobMagic(path: string): boolean {
  return /[*?[]/.test(path);
}

function segmentToRegExp(segment: string): RegExp {
  let src = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === '\\' && i + 1 < segment.length) {
      src += escapeRegExpChar(segment[++i]!);
    } else if (ch === '*') {
      src += '[^/]*';
    } else if (ch === '?') {
      src += '[^/]';
    } else if (ch === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) {
        src += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      src += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (c) => `\\${c}`)}]`;
      i = close;
    } else {
      src += escapeRegExpChar(ch);
    }
  }
  return new RegExp(`^${src}$`);
}

function escapeRegExpChar(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

async function isKind(path: string, kind: 'file' | 'dir'): Promise<boolean> {
  try {
    const s = await stat(path);
    return kind === 'file' ? s.isFile() : s.isDirectory();
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Expands an absolute glob pattern into the sorted list of regular files it matches. */
export async function expandGlob(pattern: string): Promise<string[]> {
  if (!isAbsolute(pattern)) throw new Error(`glob pattern must be absolute: ${pattern}`);
  const segments = pattern.split(sep).filter((s) => s !== '');
  let candidates: string[] = [sep];
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const last = index === segments.length - 1;
    const next: string[] = [];
    for (const dir of candidates) {
      if (!hasGlobMagic(segment)) {
        next.push(join(dir, segment.replace(/\\(.)/g, '$1')));
        continue;
      }
      const re = segmentToRegExp(segment);
      const names = (await listDir(dir)).sort();
      for (const name of names) {
        if (name.startsWith('.') && !segment.startsWith('.')) continue;
        if (re.test(name)) next.push(join(dir, name));
      }
    }
    candidates = [];
    for (const path of next) {
      if (await isKind(path, last ? 'file' : 'dir')) candidates.push(path);
    }
  }
  return candidates.sort();
}
