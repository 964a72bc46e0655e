/**
 * A strict parser for the Prometheus text exposition format (0.0.4), to check what
 * `sluice_metrics` serves: metric and label name syntax, label value escapes, float values,
 * at most one HELP and one TYPE per family with TYPE before any sample, contiguous families, no
 * duplicate series, counters named `_total`, and histograms whose buckets rise in `le` and in
 * count, end with `le="+Inf"` equal to `_count`, and come with `_sum` and `_count`.
 * Throws an Error naming the line on the first violation.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: MetricType | null;
  help: string | null;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;
const TYPES: readonly string[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function parseValue(text: string, where: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!FLOAT.test(text)) throw new Error(`${where}: "${text}" is not a float`);
  return Number(text);
}

/** Reads `{a="x",b="y"}` starting at `line[i] === '{'`; returns the labels and the index after `}`. */
function parseLabels(line: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`${where}: invalid label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label "${name}" given twice`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value of "${name}" is not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = line[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value of "${name}"`);
      if (c === '"') break;
      if (c === '\\') {
        const e = line[j + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new Error(`${where}: invalid escape "\\${e ?? ''}" in label "${name}"`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] !== '}') throw new Error(`${where}: expected "," or "}" after label "${name}"`);
  }
}

function familyOf(sample: string, families: ReadonlyMap<string, Family>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const base = sample.slice(0, -suffix.length);
    const t = families.get(base)?.type;
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return sample;
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  return `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: { le: number; value: number }[]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    let g = groups.get(key);
    if (g === undefined) groups.set(key, g = { buckets: [] });
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`histogram ${f.name}${key}: a bucket without "le"`);
      g.buckets.push({ le: parseValue(le, `histogram ${f.name} le`), value: s.value });
    } else if (s.name === `${f.name}_sum`) {
      g.sum = s.value;
    } else if (s.name === `${f.name}_count`) {
      g.count = s.value;
    } else {
      throw new Error(`histogram ${f.name}: unexpected sample ${s.name}`);
    }
  }
  for (const [key, g] of groups) {
    const where = `histogram ${f.name}${key}`;
    if (g.buckets.length === 0) throw new Error(`${where}: no buckets`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]!.le > g.buckets[i - 1]!.le)) throw new Error(`${where}: "le" does not rise at bucket ${i}`);
      if (g.buckets[i]!.value < g.buckets[i - 1]!.value) throw new Error(`${where}: bucket counts fall at le=${g.buckets[i]!.le}`);
    }
    const last = g.buckets[g.buckets.length - 1]!;
    if (last.le !== Infinity) throw new Error(`${where}: the last bucket is not le="+Inf"`);
    if (g.sum === undefined) throw new Error(`${where}: no _sum`);
    if (g.count === undefined) throw new Error(`${where}: no _count`);
    if (last.value !== g.count) throw new Error(`${where}: +Inf bucket ${last.value} differs from _count ${g.count}`);
  }
}

/** Parses and checks exposition text; returns the families by name in order of appearance. */
export function parsePrometheus(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a line feed');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  lines.pop();
  const enter = (name: string): Family => {
    if (current !== name) {
      if (closed.has(name)) throw new Error(`family ${name} appears again after other families (not contiguous)`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (f === undefined) families.set(name, f = { name, type: null, help: null, samples: [] });
    return f;
  };
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m === null) return; // an ordinary comment
      const [, kind, name, rest = ''] = m as unknown as [string, string, string, string?];
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: invalid metric name "${name}"`);
      const f = enter(name);
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: invalid escape in HELP`);
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      } else {
        if (f.type !== null) throw new Error(`${where}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        if (!TYPES.includes(rest)) throw new Error(`${where}: unknown type "${rest}"`);
        f.type = rest as MetricType;
      }
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`${where}: no value`);
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: invalid metric name "${name}"`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, where));
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new Error(`${where}: expected VALUE [TIMESTAMP]`);
    const value = parseValue(parts[0]!, where);
    if (parts[1] !== undefined && !/^-?[0-9]+$/.test(parts[1])) throw new Error(`${where}: invalid timestamp "${parts[1]}"`);
    const family = enter(familyOf(name, families));
    if (family.type === 'counter' && !name.endsWith('_total')) throw new Error(`${where}: counter ${name} does not end in _total`);
    if ((family.type === 'counter' || name.endsWith('_bucket') || name.endsWith('_count')) && value < 0) {
      throw new Error(`${where}: negative ${family.type ?? ''} value`);
    }
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    series.add(key);
    family.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type === null) throw new Error(`family ${f.name} has no TYPE line`);
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

/** The value of one series, or undefined. */
export function sampleValue(families: ReadonlyMap<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const key = seriesKey(name, labels);
  for (const f of families.values()) {
    for (const s of f.samples) if (seriesKey(s.name, s.labels) === key) return s.value;
  }
  return undefined;
}
