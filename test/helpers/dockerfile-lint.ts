/**
 * The Dockerfile rules that matter for contrib/docker/Dockerfile, checked without hadolint (not
 * in Debian): hadolint's rule ids where one exists. Each finding names its line.
 *
 * - DL3006/DL3007: every base image is pinned (a full x.y.z version tag or a digest; no `latest`)
 * - DL3002: the final stage switches to a user that is not root
 * - STOPSIGNAL and HEALTHCHECK in the final stage (Sluice stops gracefully on SIGQUIT)
 * - DL3020: COPY, not ADD (ADD fetches URLs and unpacks archives)
 * - DL3025: CMD and ENTRYPOINT in exec form (JSON), so signals reach Sluice, not a shell
 * - DL3015/DL3009: apt-get install with --no-install-recommends, and the lists removed after
 */

export interface DockerfileFinding {
  readonly line: number;
  readonly rule: string;
  readonly message: string;
}

interface Instruction {
  readonly line: number;
  readonly keyword: string;
  readonly args: string;
}

/** Instructions with their first line, continuation lines joined, comments and blank lines dropped. */
export function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { line: number; text: string } | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (/^\s*#/.test(raw) || (pending === null && raw.trim() === '')) continue;
    const continued = /\\\s*$/.test(raw);
    const part = continued ? raw.replace(/\\\s*$/, '') : raw;
    pending = pending === null ? { line: i + 1, text: part } : { line: pending.line, text: `${pending.text} ${part.trim()}` };
    if (!continued) {
      const m = /^\s*(\S+)\s*(.*)$/.exec(pending.text)!;
      out.push({ line: pending.line, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
      pending = null;
    }
  }
  return out;
}

function execForm(args: string): boolean {
  try {
    const v: unknown = JSON.parse(args);
    return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string');
  } catch {
    return false;
  }
}

export function lintDockerfile(text: string): DockerfileFinding[] {
  const found: DockerfileFinding[] = [];
  const add = (line: number, rule: string, message: string): void => void found.push({ line, rule, message });
  const all = dockerInstructions(text);
  const stages = new Set<string>();
  let finalFrom = -1;
  all.forEach((ins, i) => {
    if (ins.keyword !== 'FROM') return;
    finalFrom = i;
    const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
    const image = words[0] ?? '';
    if (words[1]?.toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
    if (stages.has(image.toLowerCase()) && !/[:@]/.test(image)) return;
    if (image.includes('@sha256:')) return;
    const tag = /:([^/]+)$/.exec(image)?.[1];
    if (tag === undefined) add(ins.line, 'DL3006', `base image "${image}" has no tag: pin a version`);
    else if (tag === 'latest') add(ins.line, 'DL3007', `base image "${image}" uses "latest": pin a version`);
    else if (!/^\d+\.\d+\.\d+/.test(tag)) add(ins.line, 'DL3006', `base image "${image}" is not pinned to a full version (x.y.z) or a digest`);
  });
  if (finalFrom < 0) return [{ line: 1, rule: 'FROM', message: 'no FROM instruction' }];
  const final = all.slice(finalFrom);
  const lastUser = final.filter((i) => i.keyword === 'USER').pop();
  if (lastUser === undefined) add(all[finalFrom]!.line, 'DL3002', 'the final stage runs as root: add USER');
  else if (/^(root|0)(:|$)/.test(lastUser.args)) add(lastUser.line, 'DL3002', `the last USER is root ("${lastUser.args}")`);
  if (!final.some((i) => i.keyword === 'STOPSIGNAL')) add(all[finalFrom]!.line, 'STOPSIGNAL', 'the final stage sets no STOPSIGNAL (Sluice stops gracefully on SIGQUIT)');
  const health = final.filter((i) => i.keyword === 'HEALTHCHECK').pop();
  if (health === undefined || /^NONE$/i.test(health.args)) add(health?.line ?? all[finalFrom]!.line, 'HEALTHCHECK', 'the final stage has no HEALTHCHECK');
  for (const ins of all) {
    if (ins.keyword === 'ADD') {
      add(ins.line, 'DL3020', /(^|\s)(https?|ftp):\/\//.test(ins.args) ? 'ADD of a URL: download in a RUN step with a checksum, or COPY a vetted file' : 'use COPY instead of ADD for files');
    }
    if ((ins.keyword === 'CMD' || ins.keyword === 'ENTRYPOINT') && !execForm(ins.args)) {
      add(ins.line, 'DL3025', `${ins.keyword} in shell form: use the JSON (exec) form, so that signals reach the process`);
    }
    if (ins.keyword === 'HEALTHCHECK' && !/^NONE$/i.test(ins.args)) {
      const cmd = /\bCMD\s+(.*)$/.exec(ins.args)?.[1];
      if (cmd === undefined) add(ins.line, 'HEALTHCHECK', 'HEALTHCHECK without CMD');
    }
    if (ins.keyword === 'RUN' && /\bapt-get\s+(-\S+\s+)*install\b/.test(ins.args)) {
      if (!/--no-install-recommends/.test(ins.args)) add(ins.line, 'DL3015', 'apt-get install without --no-install-recommends');
      if (!/rm -rf \/var\/lib\/apt\/lists/.test(ins.args)) add(ins.line, 'DL3009', 'apt-get lists are not removed in the same RUN (rm -rf /var/lib/apt/lists/*)');
    }
  }
  return found.sort((a, b) => a.line - b.line);
}
