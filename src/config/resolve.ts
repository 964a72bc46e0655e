/**
 * Drafts -> Config: nginx's merge of http > server > location (> nested location) settings,
 * defaults, upstream linking (explicit blocks may be defined after use; other proxy_pass hosts
 * become implicit upstreams named "host:port"), resolved addresses, and each location's
 * `health_check` lines attached to the upstream its proxy_pass names.
 */
import { formatHostPort } from './address.js';
import type { BuildContext } from './build-context.js';
import { DEFAULT_LISTEN, MAIN_DEFAULTS, defaultSettings } from './defaults.js';
import { mergeCompression } from './directives/gzip.js';
import { checkLimitZones } from './directives/limits.js';
import { mergeSsi } from './directives/ssi.js';
import { combinedLogFormat } from './directives/log.js';
import { mergeFiles } from './files.js';
import { UPSTREAM_DEFAULTS } from './directives/upstream.js';
import type { HttpDraft, LocationDraft, MainDraft, ProxyPassDraft, ServerDraft, SettingsDraft, UpstreamDraft } from './draft.js';
import { literalAddress, type HostTable } from './hosts.js';
import type { Source } from './include.js';
import type {
  Config, ErrorLogTarget, HealthCheckConfig, HttpConfig, Listen, LocationConfig, LogFormat, ProxyPass, ServerConfig,
  Settings, SockAddr, SourceLoc, UpstreamConfig, UpstreamServer,
} from './types.js';
import { applySslOn, checkSslListens, loadServerTls, loadUpstreamTls, mergeProxySsl, mergeSsl } from './tls.js';
import { checkForwardProxies, checkListens, checkZones } from './validate.js';
import { mergeCore } from './core-settings.js';
import { mergeEach } from './merge.js';
import { checkCacheZones } from './directives/cache.js';

export interface AssembleMeta {
  readonly file: string;
  readonly prefix: string;
  readonly sources: readonly Source[];
}

/** Every location of a tree, parents first, in file order (no recursion: nesting may be thousands deep). */
function forEachLocation(locations: readonly LocationDraft[], fn: (l: LocationDraft) => void): void {
  const pending = [...locations].reverse();
  for (let l = pending.pop(); l !== undefined; l = pending.pop()) {
    fn(l);
    for (let i = l.locations.length - 1; i >= 0; i--) pending.push(l.locations[i]!);
  }
}

/** Explicit upstream names by lower-cased name (nginx matches them case-insensitively). */
function upstreamIndex(http: HttpDraft): Map<string, string> {
  return new Map(http.upstreams.map((u) => [u.name.toLowerCase(), u.name]));
}

/** The upstream nginx makes for a `proxy_pass` to an address: one server per address, every default. */
function implicitUpstream(name: string, addresses: readonly SockAddr[], loc: SourceLoc): UpstreamConfig {
  return {
    name,
    servers: addresses.map((address) => ({
      name, address, weight: UPSTREAM_DEFAULTS.weight,
      maxFails: UPSTREAM_DEFAULTS.maxFails, failTimeout: UPSTREAM_DEFAULTS.failTimeout, backup: false, down: false,
      maxConns: UPSTREAM_DEFAULTS.maxConns, slowStart: UPSTREAM_DEFAULTS.slowStart, loc,
    })),
    keepalive: UPSTREAM_DEFAULTS.keepalive,
    keepaliveTimeout: UPSTREAM_DEFAULTS.keepaliveTimeout,
    keepaliveRequests: UPSTREAM_DEFAULTS.keepaliveRequests,
    implicit: true,
    method: { name: 'round_robin' }, sticky: null, zone: null, healthChecks: [], resolver: null, resolverTimeout: 30_000,
    loc,
  };
}

/** Every host name the config needs resolved (IP literals are skipped by the resolver step). */
export function hostsToResolve(main: MainDraft): string[] {
  const http = main.http;
  if (http === null) return [];
  const hosts: string[] = [];
  // `resolve` servers are resolved at run time only (nginx: u.no_resolve).
  for (const u of http.upstreams) for (const s of u.servers) if (!s.resolve && s.unixPath === undefined) hosts.push(s.host);
  const names = upstreamIndex(http);
  for (const server of http.servers) {
    for (const l of server.listens) hosts.push(l.host);
    forEachLocation(server.locations, (l) => {
      const pp = l.settings.proxyPass;
      if (pp !== undefined && pp.variable === undefined && pp.unixPath === undefined && !names.has(pp.host.toLowerCase())) hosts.push(pp.host);
    });
  }
  return hosts;
}

/** nginx's merge: a value set at this level wins, otherwise the parent's applies. */
function inherit(parent: Settings, d: SettingsDraft, proxyPass: ProxyPass | null): Settings {
  return {
    proxyPass,
    // nginx runs a level's own script only (ngx_http_rewrite_merge_loc_conf); an `if` block's
    // lines are part of its enclosing level's script.
    rewrite: {
      script: d.rewriteIf === true ? null : d.rewriteSteps ?? null,
      log: d.rewriteLog ?? parent.rewrite.log,
      uninitializedWarn: d.uninitializedVariableWarn ?? parent.rewrite.uninitializedWarn,
    },
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
    proxyHideHeaders: d.proxyHideHeaders ?? parent.proxyHideHeaders,
    proxyPassHeaders: d.proxyPassHeaders ?? parent.proxyPassHeaders,
    proxyPassRequestHeaders: d.proxyPassRequestHeaders ?? parent.proxyPassRequestHeaders,
    proxyPassRequestBody: d.proxyPassRequestBody ?? parent.proxyPassRequestBody,
    proxyBufferSize: d.proxyBufferSize ?? parent.proxyBufferSize,
    proxyCookieDomain: d.proxyCookieDomain === undefined ? parent.proxyCookieDomain : d.proxyCookieDomain ?? [],
    proxyCookiePath: d.proxyCookiePath === undefined ? parent.proxyCookiePath : d.proxyCookiePath ?? [],
    proxyCookieFlags: d.proxyCookieFlags === undefined ? parent.proxyCookieFlags : d.proxyCookieFlags ?? [],
    nativeTunnels: d.nativeTunnels ?? parent.nativeTunnels,
    addHeaders: d.addHeaders ?? parent.addHeaders,
    accessLogs: d.accessLogOff === true ? [] : d.accessLogs ?? parent.accessLogs,
    errorLogs: d.errorLogs ?? parent.errorLogs,
    keepaliveTimeout: d.keepaliveTimeout ?? parent.keepaliveTimeout,
    // nginx's ngx_http_core_keepalive sets both values from one directive line.
    keepaliveHeader: d.keepaliveTimeout === undefined ? parent.keepaliveHeader : d.keepaliveHeader ?? 0,
    clientHeaderTimeout: d.clientHeaderTimeout ?? parent.clientHeaderTimeout,
    clientBodyTimeout: d.clientBodyTimeout ?? parent.clientBodyTimeout,
    sendTimeout: d.sendTimeout ?? parent.sendTimeout,
    clientMaxBodySize: d.clientMaxBodySize ?? parent.clientMaxBodySize,
    clientBodyBufferSize: d.clientBodyBufferSize ?? parent.clientBodyBufferSize,
    keepaliveRequests: d.keepaliveRequests ?? parent.keepaliveRequests,
    keepaliveTime: d.keepaliveTime ?? parent.keepaliveTime,
    keepaliveDisable: d.keepaliveDisable ?? parent.keepaliveDisable,
    clientHeaderBufferSize: d.clientHeaderBufferSize ?? parent.clientHeaderBufferSize,
    largeClientHeaderBuffers: d.largeClientHeaderBuffers ?? parent.largeClientHeaderBuffers,
    limitRate: d.limitRate ?? parent.limitRate,
    limitRateAfter: d.limitRateAfter ?? parent.limitRateAfter,
    lingeringClose: d.lingeringClose ?? parent.lingeringClose,
    lingeringTime: d.lingeringTime ?? parent.lingeringTime,
    lingeringTimeout: d.lingeringTimeout ?? parent.lingeringTimeout,
    resetTimedoutConnection: d.resetTimedoutConnection ?? parent.resetTimedoutConnection,
    authBasicRealm: d.authBasicRealm !== undefined ? d.authBasicRealm : parent.authBasicRealm,
    authBasicUserFile: d.authBasicUserFile ?? parent.authBasicUserFile,
    realIpFrom: d.realIpFrom ?? parent.realIpFrom,
    realIpHeader: d.realIpHeader ?? parent.realIpHeader,
    realIpRecursive: d.realIpRecursive ?? parent.realIpRecursive,
    websocketOrigins: d.websocketOrigins ?? parent.websocketOrigins,
    forwardProxy: d.forwardProxy === undefined ? parent.forwardProxy : { ...parent.forwardProxy, ...d.forwardProxy },
    websocketMaxMessage: d.websocketMaxMessage ?? parent.websocketMaxMessage,
    websocketMaxFrame: d.websocketMaxFrame ?? parent.websocketMaxFrame,
    websocketPingInterval: d.websocketPingInterval ?? parent.websocketPingInterval,
    websocketPingTimeout: d.websocketPingTimeout ?? parent.websocketPingTimeout,
    websocketMessageRate: d.websocketMessageRate !== undefined ? d.websocketMessageRate : parent.websocketMessageRate,
    charset: d.charset !== undefined ? d.charset : parent.charset,
    resolver: d.resolver ?? parent.resolver,
    resolverTimeout: d.resolverTimeout ?? parent.resolverTimeout,
    charsetTypes: d.charsetTypes ?? parent.charsetTypes,
    defaultType: d.defaultType ?? parent.defaultType,
    ssl: mergeSsl(parent.ssl, d.ssl),
    http2: d.http2 ?? parent.http2,
    proxySsl: mergeProxySsl(parent.proxySsl, d.proxySsl),
    // ngx_http_access_module: a level with allow/deny rules of its own inherits none.
    access: d.access ?? parent.access,
    // A content handler belongs to its level, like proxy_pass.
    adminHandler: d.adminHandler?.handler ?? null,
    compression: mergeCompression(parent.compression, d.compression),
    ssi: mergeSsi(parent.ssi, d.ssi),
    files: mergeFiles(parent.files, d.files),
    core: mergeCore(parent.core, d.core),
    buffering: mergeEach(parent.buffering, d.buffering),
    // ngx_http_limit_*_merge_conf: a level with limit_conn / limit_req lines of its own inherits none.
    limits: mergeEach(parent.limits, d.limits),
    cache: mergeEach(parent.cache, d.cache),
    fastcgi: mergeEach(parent.fastcgi, d.fastcgi),
  };
}

class HttpAssembler {
  readonly upstreams = new Map<string, UpstreamConfig>();
  private readonly implicit = new Map<string, UpstreamConfig>();
  private readonly unresolved = new Set<string>();
  private readonly names: Map<string, string>;
  /** Health checks by upstream name, in the order their locations appear. */
  private readonly checks = new Map<string, HealthCheckConfig[]>();
  private readonly zoneSizes: ReadonlyMap<string, number>;
  readonly formats: Map<string, LogFormat>;

  constructor(private readonly http: HttpDraft, private readonly hosts: HostTable, private readonly cx: BuildContext) {
    this.names = upstreamIndex(http);
    this.formats = new Map([['combined', combinedLogFormat()], ...http.logFormats]);
    this.zoneSizes = checkZones(http.upstreams, cx);
    checkLimitZones(http, this.zoneSizes, cx);
    checkCacheZones(http, cx);
  }

  assemble(errorLogs: readonly ErrorLogTarget[]): HttpConfig {
    const settings = inherit(defaultSettings(errorLogs, this.cx.prefix), this.http.settings, null);
    for (const u of this.http.upstreams) this.upstreams.set(u.name, this.explicitUpstream(u, settings));
    this.checkLogFormats(this.http.settings);
    const servers = applySslOn(this.http.servers.map((s) => this.server(s, settings)), this.cx);
    checkListens(servers, this.cx);
    checkForwardProxies(servers, this.cx);
    checkSslListens(servers, this.cx);
    for (const [name, u] of this.implicit) this.upstreams.set(name, u);
    const upstreams = new Map<string, UpstreamConfig>();
    for (const [name, u] of this.upstreams) upstreams.set(name, { ...u, healthChecks: this.checks.get(name) ?? [] });
    return { upstreams, matches: this.http.matches, maps: this.http.maps, setVariables: [...this.cx.setVariables.keys()], logFormats: this.formats, cacheZones: this.http.cacheZones, servers, settings, limitZones: this.http.limitZones };
  }

  private explicitUpstream(u: UpstreamDraft, http: Settings): UpstreamConfig {
    const servers: UpstreamServer[] = [];
    const resolver = u.resolver ?? http.resolver;
    for (const s of u.servers) {
      if (s.unixPath !== undefined) {
        servers.push({
          name: s.name, address: { host: '', port: 0, family: 4, path: s.unixPath }, weight: s.weight,
          maxFails: s.maxFails, failTimeout: s.failTimeout, backup: s.backup, down: s.down, maxConns: s.maxConns,
          slowStart: s.slowStart, loc: s.at,
        });
        continue;
      }
      if (s.resolve && literalAddress(s.host) === null) {
        if (this.runTimeResolvable(u, s.at, resolver !== null)) {
          servers.push({
            name: s.name, address: { host: '0.0.0.0', port: s.port, family: 4 }, weight: s.weight,
            maxFails: s.maxFails, failTimeout: s.failTimeout, backup: s.backup, down: s.down, maxConns: s.maxConns,
            slowStart: s.slowStart, resolve: s.host.toLowerCase(), loc: s.at,
          });
        }
        continue;
      }
      const addresses = this.hosts.get(s.host.toLowerCase()) ?? null;
      if (addresses === null) {
        this.cx.problem(`host not found in upstream "${s.name}"`, s.at, `"${s.host}" does not resolve; check the name or use an IP address`);
        continue;
      }
      for (const a of addresses) {
        servers.push({
          name: s.name, address: { host: a.host, port: s.port, family: a.family }, weight: s.weight,
          maxFails: s.maxFails, failTimeout: s.failTimeout, backup: s.backup, down: s.down, maxConns: s.maxConns,
          slowStart: s.slowStart, loc: s.at,
        });
      }
    }
    return {
      name: u.name, servers, keepalive: u.keepalive, keepaliveTimeout: u.keepaliveTimeout,
      keepaliveRequests: u.keepaliveRequests, implicit: false, loc: u.at,
      method: u.method?.value ?? { name: 'round_robin' },
      sticky: u.sticky,
      rebalance: u.rebalance ?? null,
      ...(u.stickyLearn === undefined ? {} : { stickyLearn: u.stickyLearn }),
      // A zone written without a size takes the size another upstream gave it (nginx's shared zones).
      zone: u.zone === null ? null : { name: u.zone.name, size: this.zoneSizes.get(u.zone.name) ?? u.zone.size },
      healthChecks: [],
      resolver,
      resolverTimeout: u.resolverTimeout ?? http.resolverTimeout,
    };
  }

  /**
   * nginx's checks for `server NAME resolve` (ngx_http_upstream_init_round_robin): the group must
   * be in a shared memory zone and have a resolver. The messages are nginx's.
   */
  private runTimeResolvable(u: UpstreamDraft, at: SourceLoc, hasResolver: boolean): boolean {
    const where = `upstream "${u.name}" in ${u.at.file}:${u.at.line}`;
    if (u.zone === null) {
      this.cx.problem(`resolving names at run time requires ${where} to be in shared memory`, at,
        `add "zone ${u.name} 64k;" to the upstream block`);
      return false;
    }
    if (!hasResolver) {
      this.cx.problem(`no resolver defined to resolve names at run time in ${where}`, at,
        'add "resolver ADDRESS;" (the DNS server, e.g. 127.0.0.11 in Docker) to http {} or to the upstream block');
      return false;
    }
    return true;
  }

  /** The implicit upstream of `proxy_pass http://unix:/path`, named "unix:/path" as nginx names it. */
  private unixUpstream(pp: ProxyPassDraft, path: string): string {
    const name = `unix:${path}`;
    if (!this.implicit.has(name)) this.implicit.set(name, implicitUpstream(name, [{ host: '', port: 0, family: 4, path }], pp.at));
    return name;
  }

  /** Ties proxy_pass to an upstream block, or to an implicit upstream for "host:port". */
  private link(pp: ProxyPassDraft): ProxyPass | null {
    const base = { url: pp.url, scheme: pp.scheme, uri: pp.uri, proxyHost: pp.proxyHost, tls: null };
    // Variables: the target is found per request (nginx ngx_http_proxy_eval), named by the URL meanwhile.
    if (pp.variable !== undefined) return { ...base, upstream: pp.url, variable: pp.variable };
    const defaultPort = pp.scheme === 'https' ? 443 : 80;
    if (pp.unixPath !== undefined) return { ...base, upstream: this.unixUpstream(pp, pp.unixPath) };
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
    if (pp.scheme === 'fastcgi' && pp.port === null) {
      // nginx (ngx_http_upstream_init_round_robin): an address that is no upstream{} needs a port.
      this.cx.problem(`no port in upstream "${pp.host}"`, pp.at, `write fastcgi_pass ${pp.host}:9000 (the FastCGI server's port), or define "upstream ${pp.host} { server HOST:PORT; }" in http {}`);
      return null;
    }
    const name = formatHostPort(host, pp.port ?? defaultPort);
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
      this.implicit.set(name, implicitUpstream(name, addresses.map((a) => ({ host: a.host, port: pp.port ?? defaultPort, family: a.family })), pp.at));
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
        port: DEFAULT_LISTEN.port, defaultServer: false, ssl: false, http2: false, proxyProtocol: false, loc: s.at,
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
        listens.push({
          key: formatHostPort(a.host, l.port), host: a.host, port: l.port, defaultServer: l.defaultServer, ssl: l.ssl, http2: l.http2, proxyProtocol: l.proxyProtocol, loc: l.at,
          ...(l.socket === undefined ? {} : { socket: l.socket }),
        });
      }
    }
    this.checkLogFormats(s.settings);
    const settings = inherit(parent, s.settings, null);
    return {
      listens,
      // nginx gives a server without server_name the name "" (requests without a Host header).
      serverNames: s.names.length > 0 ? s.names : [{ kind: 'exact', name: '' }],
      primaryName: s.primaryName ?? '',
      locations: this.locations(s.locations, settings),
      settings,
      tls: loadServerTls(settings.ssl, s.at, this.cx),
      loc: s.at,
    };
  }

  /**
   * nginx Plus attaches a location's health_check to the upstream group its proxy_pass names;
   * several locations (or lines) proxying to one upstream each add their own check.
   */
  private attachHealthChecks(l: LocationDraft, pp: ProxyPass | null): void {
    for (const check of l.healthChecks) {
      if (!l.proxyPassWritten) {
        this.cx.problem('"health_check" directive requires "proxy_pass" in the same location', check.loc,
          'a health check probes the upstream this location proxies to; add "proxy_pass http://UPSTREAM;" here, '
          + 'or move health_check into the location that has it');
        continue;
      }
      if (check.match !== null && !this.http.matches.has(check.match)) {
        this.cx.problem(`match "${check.match}" not found`, check.loc,
          `define "match ${check.match} { status 200-399; }" in http {}, or remove "match=${check.match}"`);
        continue;
      }
      // A proxy_pass that failed was reported where it is written.
      if (pp === null) continue;
      if (pp.variable !== undefined) {
        // The group is known per request only, so there is nothing to probe in the background.
        this.cx.problem('"health_check" cannot be used with "proxy_pass" with variables', check.loc,
          'proxy_pass to an upstream {} block by its literal name where health_check is written');
        continue;
      }
      if (pp.scheme === 'https' && check.type !== 'tcp') {
        // Probes speak plain HTTP for now; accepting this would mark every TLS server unhealthy.
        this.cx.problem(`"health_check type=${check.type}" is not implemented for https upstreams`, check.loc,
          'use "health_check type=tcp" for an https upstream, or remove health_check here');
        continue;
      }
      let list = this.checks.get(pp.upstream);
      if (list === undefined) this.checks.set(pp.upstream, list = []);
      list.push({ ...check, host: pp.proxyHost });
    }
  }

  /**
   * A server's location tree, each location built before its children and in file order (so
   * problems and health checks come in that order), without recursion: nested locations may be
   * thousands deep.
   */
  private locations(drafts: readonly LocationDraft[], parent: Settings): LocationConfig[] {
    const top: LocationConfig[] = [];
    const pending: { readonly draft: LocationDraft; readonly parent: Settings; readonly into: LocationConfig[] }[] = [];
    for (let i = drafts.length - 1; i >= 0; i--) pending.push({ draft: drafts[i]!, parent, into: top });
    for (let job = pending.pop(); job !== undefined; job = pending.pop()) {
      const children: LocationConfig[] = [];
      const config = this.location(job.draft, job.parent, children);
      job.into.push(config);
      const nested = job.draft.locations;
      for (let i = nested.length - 1; i >= 0; i--) pending.push({ draft: nested[i]!, parent: config.settings, into: children });
    }
    return top;
  }

  /** One location; `children` is filled with its nested locations afterwards. */
  private location(l: LocationDraft, parent: Settings, children: LocationConfig[]): LocationConfig {
    this.checkLogFormats(l.settings);
    const admin = l.settings.adminHandler;
    if (admin !== undefined && l.proxyPassWritten) {
      this.cx.problem(`"${admin.directive}" cannot be combined with "proxy_pass" in one location`, admin.at,
        'a location either proxies or serves the status; give the status its own location, e.g. "location = /status { ... }"');
    }
    const pp = l.settings.proxyPass === undefined ? null : this.link(l.settings.proxyPass);
    this.attachHealthChecks(l, pp);
    let settings = inherit(parent, l.settings, pp);
    // An `if` block in a location keeps its location's content handler (nginx's
    // ngx_http_update_location_config changes it only when the block names its own).
    if (l.modifier === 'if') settings = { ...settings, proxyPass: pp ?? parent.proxyPass, adminHandler: settings.adminHandler ?? parent.adminHandler };
    if (pp?.scheme === 'https') settings = { ...settings, proxyPass: { ...pp, tls: loadUpstreamTls(settings.proxySsl, this.cx, l.settings.proxyPass!.at) } };
    return {
      modifier: l.modifier,
      pattern: l.pattern,
      regex: l.regex,
      locations: children,
      settings,
      loc: l.at,
    };
  }
}

/** `least_conn fleet` counts through the `fleet` directive's Redis: without one it would mean nothing. */
function requireFleet(main: MainDraft, cx: BuildContext): void {
  for (const u of main.http?.upstreams ?? []) {
    const m = u.method;
    if (m?.value.name === 'least_conn' && m.value.fleet === true) {
      cx.problem('"least_conn fleet" requires the "fleet" directive', m.at, 'add "fleet redis://HOST:6379;" in the main context, or write "least_conn;" for this instance\'s own counts');
    }
  }
  for (const z of main.http?.limitZones.values() ?? []) {
    if (z.fleet === true) {
      cx.problem(`"limit_${z.kind}_zone ... fleet" requires the "fleet" directive`, z.at, `add "fleet redis://HOST:6379;" in the main context, or remove "fleet" to count on this instance only`);
    }
  }
}

/** Builds the Config from the drafts and the resolved hosts; problems and warnings go to `cx`. */
export function assembleConfig(main: MainDraft, hosts: HostTable, cx: BuildContext, meta: AssembleMeta): Omit<Config, 'warnings'> {
  const errorLogs = main.errorLogs ?? MAIN_DEFAULTS.errorLogs;
  if (main.fleetWritten !== true) requireFleet(main, cx);
  const http = main.http === null ? null : new HttpAssembler(main.http, hosts, cx).assemble(errorLogs);
  return {
    file: meta.file,
    prefix: meta.prefix,
    user: main.user ?? null,
    process: { ...MAIN_DEFAULTS.process, ...main.process },
    files: [...cx.filesRead].map(([path, bytes]) => ({ path, data: bytes.toString('base64') })),
    workerProcesses: main.workerProcesses ?? MAIN_DEFAULTS.workerProcesses,
    pid: main.pid ?? cx.path(MAIN_DEFAULTS.pidFile),
    workerShutdownTimeout: main.workerShutdownTimeout ?? MAIN_DEFAULTS.workerShutdownTimeout,
    websocketDrain: main.websocketDrain ?? null,
    errorLogs,
    workerConnections: main.events?.workerConnections ?? MAIN_DEFAULTS.workerConnections,
    acceptMutex: main.events?.acceptMutex ?? MAIN_DEFAULTS.acceptMutex,
    fleet: main.fleet ?? null,
    http,
    sources: meta.sources,
  };
}
