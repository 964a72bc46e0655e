/**
 * What a new user installs from (issue 18), checked with Node alone: the man page is what
 * scripts/man.mjs makes from its Markdown; the package ships the command and the man page; the
 * Dockerfile keeps the rules that matter (test/helpers/dockerfile-lint.ts, hadolint's where it
 * has them); the compose file parses and agrees with the Dockerfile, its config and the seed
 * config it reproduces; the systemd unit and the logrotate rule agree on the pid file. What
 * needs other programs (systemd-analyze, man, logrotate) is in test/e2e/contrib.e2e.test.ts; what
 * needs a Docker daemon is not tested (README.md says so).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { Config, LocationConfig } from '../../src/config/types.js';
import { ROOT } from '../helpers/cli-process.js';
import { dockerInstructions, lintDockerfile } from '../helpers/dockerfile-lint.js';

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const DOCKERFILE = 'contrib/docker/Dockerfile';

test('man/sluice.1 is what scripts/man.mjs makes from man/sluice.1.md, and the package ships it with the command', async () => {
  const { buildManPage } = await import(pathToFileURL(join(ROOT, 'scripts', 'man.mjs')).href) as { buildManPage(): string };
  assert.equal(read('man/sluice.1'), buildManPage(), 'run `npm run man` after editing man/sluice.1.md');
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; man: string[]; files: string[]; scripts: Record<string, string> };
  assert.deepEqual(pkg.bin, { sluice: 'dist/src/cli/main.js' });
  assert.deepEqual(pkg.man, ['./man/sluice.1']);
  assert.ok(pkg.files.includes('man/sluice.1') && pkg.files.includes('contrib'), `files: ${pkg.files.join(', ')}`);
  // npm run certs compiles its one script, not the whole project.
  assert.doesNotMatch(pkg.scripts['certs']!, /npm run build/);
  assert.deepEqual((JSON.parse(read('tsconfig.certs.json')) as { files: string[] }).files, ['scripts/certs.ts']);
});

test('the Dockerfile passes the lint rules; each rule catches what it is for', () => {
  assert.deepEqual(lintDockerfile(read(DOCKERFILE)), []);
  const bad = [
    'FROM node AS build',
    'RUN apt-get update && apt-get install -y gcc',
    'FROM node:latest',
    'FROM debian:bookworm-slim',
    'ADD https://example.com/x.tgz /x.tgz',
    'ADD x /x',
    'USER root',
    'ENTRYPOINT sluice',
    'CMD sluice -c /etc/sluice/sluice.conf',
  ].join('\n');
  assert.deepEqual(lintDockerfile(bad).map((f) => `${f.line} ${f.rule}`), [
    '1 DL3006', '2 DL3015', '2 DL3009', '3 DL3007', '4 DL3006', '4 STOPSIGNAL', '4 HEALTHCHECK', '5 DL3020', '6 DL3020', '7 DL3002', '8 DL3025', '9 DL3025',
  ]);
  // A stage name and a digest are pinned enough; a non-root USER and both instructions satisfy the rest.
  assert.deepEqual(lintDockerfile('FROM node:22.12.0-bookworm-slim AS b\nFROM b\nFROM debian@sha256:0123\nUSER 1000:1000\nSTOPSIGNAL SIGQUIT\nHEALTHCHECK CMD ["true"]\nCMD ["x"]\n'), []);
});

/** The compose file, as the compose specification reads it (anchors and merge keys resolved). */
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  healthcheck?: { test: string[] };
}

function locationNamed(config: Config, path: string): LocationConfig {
  const l = config.http!.servers[0]!.locations.find((x) => x.pattern === path);
  assert.ok(l, `a location ${path}`);
  return l;
}

test('compose.yaml parses and agrees with the Dockerfile, contrib/docker/sluice.conf and the seed config it reproduces', async () => {
  const compose = parse(read('contrib/docker/compose.yaml'), { merge: true, strict: true, uniqueKeys: true }) as { services: Record<string, ComposeService> };
  const { sluice, ...echoes } = compose.services;
  assert.ok(sluice);
  assert.deepEqual(Object.keys(echoes).sort(), ['echo-a', 'echo-b']);
  for (const s of Object.values(compose.services)) {
    assert.deepEqual(s.build, { context: '../..', dockerfile: DOCKERFILE }, 'built from the repository root with the Dockerfile');
    assert.equal(s.image, sluice.image);
  }
  assert.ok(existsSync(join(ROOT, 'contrib/docker', sluice.build!.context, sluice.build!.dockerfile)));

  // The Dockerfile's CMD runs the config that compose mounts over it.
  const instructions = dockerInstructions(read(DOCKERFILE));
  const last = (k: string): string => instructions.filter((i) => i.keyword === k).pop()!.args;
  assert.deepEqual(JSON.parse(last('ENTRYPOINT')), ['sluice']);
  const cmd = JSON.parse(last('CMD')) as string[];
  assert.equal(cmd[0], '-c');
  assert.deepEqual(sluice.volumes, [`./sluice.conf:${cmd[1]!}:ro`]);
  assert.match(read(DOCKERFILE), new RegExp(`^COPY contrib/docker/sluice\\.conf ${cmd[1]!.replace(/\./g, '\\.')}$`, 'm'));

  // The config: its listen port is the one published, exposed and health-checked.
  const stub = async (): Promise<{ host: string; port: number; family: 4 }[]> => [{ host: '10.0.0.2', port: 0, family: 4 }];
  const loaded = await loadConfig({ file: join(ROOT, 'contrib/docker/sluice.conf'), resolveHost: stub, globalDirectives: cmd[3]! });
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.problems));
  const config = loaded.config;
  const port = config.http!.servers[0]!.listens[0]!.port;
  assert.equal(config.http!.servers[0]!.listens[0]!.host, '0.0.0.0', 'listens on every address of the container');
  assert.deepEqual(sluice.ports, [`${port}:${port}`]);
  assert.equal(last('EXPOSE'), String(port));
  assert.match(last('HEALTHCHECK'), new RegExp(`http://127\\.0\\.0\\.1:${port}/healthz`));
  assert.equal(locationNamed(config, '/healthz').modifier, '=');
  assert.equal(config.pid, '/run/sluice/sluice.pid');
  assert.match(read(DOCKERFILE), /install -d -o node -g node \/run\/sluice/);
  // A graceful stop (STOPSIGNAL SIGQUIT) gets worker_shutdown_timeout before compose kills it.
  assert.equal(last('STOPSIGNAL'), 'SIGQUIT');
  assert.ok(Number(/^(\d+)s$/.exec(sluice.stop_grace_period!)![1]) * 1000 > config.workerShutdownTimeout);

  // The upstream is the echo services, each on the port its command listens on.
  const servers = config.http!.upstreams.get('websocket')!.servers.map((s) => s.name);
  const echoServers = Object.entries(echoes).map(([name, s]) => {
    const c = s.command!;
    assert.deepEqual([c[0], c[1], c[2], c[5], c[6]], ['echo', '--host', '0.0.0.0', '--id', name]);
    assert.match(s.healthcheck!.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${c[4]!}/`));
    assert.deepEqual(sluice.depends_on![name], { condition: 'service_healthy' });
    return `${name}:${c[4]!}`;
  });
  assert.deepEqual(servers, echoServers);

  // And otherwise it is the seed: the same map, the same proxy settings for "/".
  const seed = await loadConfig({ file: join(ROOT, 'examples/load-balanced-websocket.conf') });
  assert.ok(seed.ok);
  const headers = (c: Config): string[] => locationNamed(c, '/').settings.proxySetHeaders.map((h) => `${h.name}: ${h.value.raw}`);
  assert.deepEqual(headers(config), headers(seed.config));
  assert.deepEqual(locationNamed(config, '/').settings.proxyHttpVersion, locationNamed(seed.config, '/').settings.proxyHttpVersion);
  const maps = (c: Config): unknown[] => c.http!.maps.map((m) => [m.variable, m.source.raw, m.defaultValue?.raw, [...m.exact].map(([k, v]) => [k, v.raw])]);
  assert.deepEqual(maps(config), maps(seed.config));
  assert.deepEqual(seed.config.http!.upstreams.get('websocket')!.servers.map((s) => s.address.port), [8010, 8011]);
});

test('the systemd unit, the logrotate rule and the image agree on the pid file; the unit reloads with HUP and stops with QUIT', () => {
  const unit = read('contrib/systemd/sluice.service');
  const values = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
  assert.deepEqual(values('Type'), ['exec']);
  const start = values('ExecStart')[0]!;
  assert.equal(start, '/usr/local/bin/sluice -c /etc/sluice/sluice.conf -g "pid /run/sluice/sluice.pid;"');
  // The check before start and reload reads exactly what the start reads.
  assert.deepEqual(values('ExecStartPre'), [start.replace('sluice -c', 'sluice -t -q -c')]);
  assert.deepEqual(values('ExecReload'), [start.replace('sluice -c', 'sluice -t -q -c'), '/bin/kill -HUP $MAINPID']);
  assert.deepEqual(values('KillSignal'), ['SIGQUIT']);
  assert.deepEqual(values('RuntimeDirectory'), ['sluice']);
  assert.deepEqual(values('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  assert.ok(Number(values('LimitNOFILE')[0]) >= 65536);
  for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'RestrictAddressFamilies', 'SystemCallFilter']) {
    assert.ok(values(key).length > 0, `hardening: ${key}`);
  }
  assert.deepEqual(values('MemoryDenyWriteExecute'), [], 'V8 needs writable and executable memory');
  const rotate = read('contrib/logrotate/sluice');
  assert.match(rotate, /kill -USR1 "\$\(cat \/run\/sluice\/sluice\.pid\)"/);
  assert.match(rotate, /^\/var\/log\/sluice\/\*\.log \{$/m);
  assert.deepEqual(values('LogsDirectory'), ['sluice']);
});
