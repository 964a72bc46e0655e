/**
 * Drafts -> Config: nginx's merge of http > server > location (> nested location) settings,
 * defaults, upstream linking (explicit blocks may be defined after use; other proxy_pass hosts
 * become implicit upstreams named "host:port") and resolved addresses.
 */
import { formatHostPort } from './address.js';
import type { BuildContext } from './build-context.js';
import { DEFAULT_LISTEN, MAIN_DEFAULTS, defaultSettings } from './defaults.js';
import { combinedLogFormat } from './directives/log.js';
import { UPSTREAM_DEFAULTS } from './directives/upstream.js';
import type { HttpDraft, LocationDraft, MainDraft, ProxyPassDraft, ServerDraft, SettingsDraft, UpstreamDraft } from './draft.js';
import { literalAddress, type HostTable } from './hosts.js';
import type { Source } from './include.js';
import type {
  Config, ErrorLogTarget, HttpConfig, Listen, LocationConfig, LogFormat, ProxyPass, ServerConfig, Settings,
  UpstreamConfig, UpstreamServer,
} from './types.js';
import { checkListens } from './validate.js';

export interface AssembleMeta {
  readonly file: string;
  readonly prefix: string;
  readonly sources: readonly Source[];
}

function forEachLocation(locations: readonly LocationDraft[], fn: (l: LocationDraft) => void): void {
  for (const l of locations) {
    fn(l);
    forEachLocation(l.locations, fn);
  }
}

/** Explicit upstream names by lower-cased name (nginx matches them case-insensitively). */
function upstreamIndex(http: HttpDraft): Map<string, string> {
  return new Map(http.upstreams.map((u) => [u.name.toLowerCase(), u.name]));
}

/** Every host name the config needs resolved (IP literals are skipped by the resolver step). */
export function hostsToResolve(main: MainDraft): string[] {
  const http = main.http;
  if (http === null) return [];
  const hosts: string[] = [];
  for (const u of http.upstreams) for (const s of u.servers) hosts.push(s.host);
  const names = upstreamIndex(http);
  for (const server of http.servers) {
    for (const l of server.listens) hosts.push(l.host);
    forEachLocation(server.locations, (l) => {
      const pp = l.settings.proxyPass;
      if (pp !== undefined && !names.has(pp.host.toLowerCase())) hosts.push(pp.host);
    });
  }
  return hosts;
}

/** nginx's merge: a value set at this level wins, otherwise the parent's applies. */
function inherit(parent: Settings, d: SettingsDraft, proxyPass: ProxyPass | null): Settings {
  return {
    proxyPass,
    returnAction: d.returnAction ?? null,
    proxyHttpVersion: d.proxyHttpVersion ?? parent.proxyHttpVersion,
    // A level with any proxy_set_header / add_header / access_log / error_log line has only its own.
    proxySetHeaders: d.proxySetHeaders ?? parent.proxySetHeaders,
    proxyConnectTimeout: d.proxyConnectTimeout ?? parent.proxyConnectTimeout,
    proxyReadTimeout: d.proxyReadTimeout ?? parent.proxyReadTimeout,
    proxySendTimeout: d.proxySendTimeout ?? parent.proxySendTimeout,
    proxyRedirect: d.proxyRedirect ?? parent.proxyRedirect,
    proxyNextUpstream: d.proxyNextUpstream ?? parent.proxyNextUpstream,
    proxyNextUpstreamTries: d.proxyNextUpstreamTries ?? parent.proxyNextUpstreamTries,
    proxyNextUpstreamTimeout: d.proxyNextUpstreamTimeout ?? parent.proxyNextUpstreamTimeout,
    proxyBuffering: d.proxyBuffering ?? parent.proxyBuffering,
    addHeaders: d.addHeaders ?? parent.addHeaders,
    accessLogs: d.accessLogOff === true ? [] : d.accessLogs ?? parent.accessLogs,
    errorLogs: d.errorLogs ?? parent.errorLogs,
    keepaliveTimeout: d.keepaliveTimeout ?? parent.keepaliveTimeout,
    defaultType: d.defaultType ?? parent.defaultType,
  };
}

class HttpAssembler {
  readonly upstreams = new Map<string, UpstreamConfig>();
  private readonly implicit = new Map<string, UpstreamConfig>();
  private readonly unresolved = new Set<string>();
  private readonly names: Map<string, string>;
  readonly formats: Map<string, LogFormat>;

  constructor(private readonly http: HttpDraft, private readonly hosts: HostTable, private readonly cx: BuildContext) {
    this.names = upstreamIndex(http);
    this.formats = new Map([['combined', combinedLogFormat()], ...http.logFormats]);
  }

  assemble(errorLogs: readonly ErrorLogTarget[]): HttpConfig {
    for (const u of this.http.upstreams) this.upstreams.set(u.name, this.explicitUpstream(u));
    this.checkLogFormats(this.http.settings);
    const settings = inherit(defaultSettings(errorLogs), this.http.settings, null);
    const servers = this.http.servers.map((s) => this.server(s, settings));
    checkListens(servers, this.cx);
    for (const [name, u] of this.implicit) this.upstreams.set(name, u);
    return { upstreams: this.upstreams, maps: this.http.maps, logFormats: this.formats, servers, settings };
  }

  private explicitUpstream(u: UpstreamDraft): UpstreamConfig {
    const servers: UpstreamServer[] = [];
    for (const s of u.servers) {
      const addresses = this.hosts.get(s.host.toLowerCase()) ?? null;
      if (addresses === null) {
        this.cx.problem(`host not found in upstream "${s.name}"`, s.at, `"${s.host}" does not resolve; check the name or use an IP address`);
        continue;
      }
      for (const a of addresses) {
        servers.push({
          name: s.name, address: { host: a.host, port: s.port, family: a.family }, weight: s.weight,
          maxFails: s.maxFails, failTimeout: s.failTimeout, backup: s.backup, down: s.down, loc: s.at,
        });
      }
    }
    return {
      name: u.name, servers, keepalive: u.keepalive, keepaliveTimeout: u.keepaliveTimeout,
      keepaliveRequests: u.keepaliveRequests, implicit: false, loc: u.at,
    };
  }

  /** Ties proxy_pass to an upstream block, or to an implicit upstream for "host:port". */
  private link(pp: ProxyPassDraft): ProxyPass | null {
    const base = { url: pp.url, scheme: 'http' as const, uri: pp.uri, proxyHost: pp.proxyHost };
    const host = pp.host.toLowerCase();
    const explicit = this.names.get(host);
    if (explicit !== undefined) {
      if (pp.port !== null) {
        this.cx.problem(`upstream "${explicit}" may not have port ${pp.port}`, pp.at,
          `"${explicit}" is an upstream {} block, whose servers carry their own ports; write http://${explicit} instead`);
        return null;
      }
      return { ...base, upstream: explicit };
    }
    const name = formatHostPort(host, pp.port ?? 80);
    if (!this.implicit.has(name)) {
      const addresses = this.hosts.get(host) ?? null;
      if (addresses === null) {
        if (!this.unresolved.has(name)) {
          this.unresolved.add(name);
          this.cx.problem(`host not found in upstream "${pp.host}"`, pp.at,
            `"${pp.host}" is neither an upstream {} block nor a resolvable host name; define "upstream ${pp.host} { server HOST:PORT; }" in http {}`);
        }
        return null;
      }
      this.implicit.set(name, {
        name,
        servers: addresses.map((a) => ({
          name, address: { host: a.host, port: pp.port ?? 80, family: a.family }, weight: UPSTREAM_DEFAULTS.weight,
          maxFails: UPSTREAM_DEFAULTS.maxFails, failTimeout: UPSTREAM_DEFAULTS.failTimeout, backup: false, down: false, loc: pp.at,
        })),
        keepalive: UPSTREAM_DEFAULTS.keepalive,
        keepaliveTimeout: UPSTREAM_DEFAULTS.keepaliveTimeout,
        keepaliveRequests: UPSTREAM_DEFAULTS.keepaliveRequests,
        implicit: true,
        loc: pp.at,
      });
    }
    return { ...base, upstream: name };
  }

  private checkLogFormats(d: SettingsDraft): void {
    for (const log of d.accessLogs ?? []) {
      if (!this.formats.has(log.format)) {
        this.cx.problem(`unknown log format "${log.format}"`, log.loc,
          `define it with "log_format ${log.format} ..." in http {}, or use the predefined "combined"`);
      }
    }
  }

  private server(s: ServerDraft, parent: Settings): ServerConfig {
    const listens: Listen[] = [];
    if (s.listens.length === 0) {
      listens.push({
        key: formatHostPort(DEFAULT_LISTEN.host, DEFAULT_LISTEN.port), host: DEFAULT_LISTEN.host,
        port: DEFAULT_LISTEN.port, defaultServer: false, loc: s.at,
      });
    }
    for (const l of s.listens) {
      const literal = literalAddress(l.host);
      const addresses = literal !== null ? [literal] : this.hosts.get(l.host.toLowerCase()) ?? null;
      if (addresses === null) {
        this.cx.problem(`host not found in "${l.text}" of the "listen" directive`, l.at, 'listen on an IP address, or a name that resolves');
        continue;
      }
      for (const a of addresses) {
        listens.push({ key: formatHostPort(a.host, l.port), host: a.host, port: l.port, defaultServer: l.defaultServer, loc: l.at });
      }
    }
    this.checkLogFormats(s.settings);
    const settings = inherit(parent, s.settings, null);
    return {
      listens,
      // nginx gives a server without server_name the name "" (requests without a Host header).
      serverNames: s.names.length > 0 ? s.names : [{ kind: 'exact', name: '' }],
      primaryName: s.primaryName ?? '',
      locations: s.locations.map((l) => this.location(l, settings)),
      settings,
      loc: s.at,
    };
  }

  private location(l: LocationDraft, parent: Settings): LocationConfig {
    this.checkLogFormats(l.settings);
    const pp = l.settings.proxyPass === undefined ? null : this.link(l.settings.proxyPass);
    const settings = inherit(parent, l.settings, pp);
    return {
      modifier: l.modifier,
      pattern: l.pattern,
      regex: l.regex,
      locations: l.locations.map((c) => this.location(c, settings)),
      settings,
      loc: l.at,
    };
  }
}

/** Builds the Config from the drafts and the resolved hosts; problems go to `cx`. */
export function assembleConfig(main: MainDraft, hosts: HostTable, cx: BuildContext, meta: AssembleMeta): Config {
  const errorLogs = main.errorLogs ?? MAIN_DEFAULTS.errorLogs;
  const http = main.http === null ? null : new HttpAssembler(main.http, hosts, cx).assemble(errorLogs);
  return {
    file: meta.file,
    prefix: meta.prefix,
    workerProcesses: main.workerProcesses ?? MAIN_DEFAULTS.workerProcesses,
    pid: main.pid ?? null,
    errorLogs,
    workerConnections: main.events?.workerConnections ?? MAIN_DEFAULTS.workerConnections,
    http,
    sources: meta.sources,
  };
}
