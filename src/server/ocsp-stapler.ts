/**
 * OCSP stapling (`ssl_stapling`) at run time, after nginx's ngx_ssl_certificate_status_callback:
 * a client that asks for the certificate status gets the response held for the certificate, if
 * it is still valid; asking also starts a refresh when one is due. A responder's answer is held
 * when it is a successful response with status "good" for this certificate, valid now, and (with
 * `ssl_stapling_verify`) properly signed; it is refreshed 5 minutes before its nextUpdate but at
 * least hourly, and a failure is retried after 5 minutes, as nginx does. A `ssl_stapling_file`
 * is stapled as it is, always.
 *
 * Unlike nginx, which asks the responder only when the first client wants a staple (that client
 * gets none), Sluice also asks as soon as a configuration starts serving. Responses are kept per
 * certificate and responder for the life of the process, across reloads.
 */
import { X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Config, StaplingConfig } from '../config/types.js';
import { checkOcspResponse, ocspRequest } from '../core/ocsp.js';
import type { ErrorLog } from '../observability/error-log.js';

/** nginx's staple->timeout: the whole exchange with the responder. */
const RESPONDER_TIMEOUT_MS = 60_000;
/** Larger answers are refused (nginx reads up to 16k). */
const MAX_RESPONSE_BYTES = 16 * 1024;
const RETRY_AFTER_ERROR_MS = 300_000;
const REFRESH_BEFORE_MS = 300_000;
const REFRESH_AT_LEAST_MS = 3_600_000;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

interface StapleState {
  readonly config: StaplingConfig;
  response: Buffer | null;
  /** Epoch ms until which `response` may be stapled. */
  valid: number;
  /** Epoch ms after which a handshake starts a refresh. */
  refresh: number;
  loading: boolean;
}

function stateKey(s: StaplingConfig): string {
  return `${s.certificate}\0${s.responder ?? ''}\0${s.file ?? ''}\0${s.verify}\0${s.trusted}\0${s.chain}`;
}

function certs(pem: string): X509Certificate[] {
  return (pem.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p));
}

export class OcspStapler {
  readonly #states = new Map<string, StapleState>();
  /** The staplings of each configuration by certificate (base64 DER). */
  readonly #byConfig = new WeakMap<Config, Map<string, StaplingConfig>>();
  readonly #log: () => ErrorLog;
  readonly #now: () => number;
  readonly #pending = new Set<{ destroy(): void }>();

  constructor(log: () => ErrorLog, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** Whether any server of the configuration staples (so handshakes need the OCSPRequest event). */
  uses(config: Config): boolean {
    return this.#index(config).size > 0;
  }

  /** Asks every responder of a configuration now, rather than on the first handshake. */
  prefetch(config: Config): void {
    for (const s of this.#index(config).values()) this.#update(this.#state(s));
  }

  /** What to staple for `certificate` (DER) under `config`, or null; starts a refresh when one is due. */
  staple(config: Config, certificate: Buffer): Buffer | null {
    const s = this.#index(config).get(certificate.toString('base64'));
    if (s === undefined) return null;
    const state = this.#state(s);
    const now = this.#now();
    const out = state.response !== null && state.valid >= now ? state.response : null;
    this.#update(state);
    return out;
  }

  /** Stops every request to a responder (the proxy is going away). */
  close(): void {
    for (const r of this.#pending) r.destroy();
    this.#pending.clear();
  }

  #index(config: Config): Map<string, StaplingConfig> {
    let m = this.#byConfig.get(config);
    if (m === undefined) {
      m = new Map();
      for (const server of config.http?.servers ?? []) {
        for (const s of server.tls?.stapling ?? []) if (!m.has(s.certificate)) m.set(s.certificate, s);
      }
      this.#byConfig.set(config, m);
    }
    return m;
  }

  #state(config: StaplingConfig): StapleState {
    const key = stateKey(config);
    let state = this.#states.get(key);
    if (state === undefined) {
      state = config.file !== null
        ? { config, response: Buffer.from(config.file, 'base64'), valid: Number.MAX_SAFE_INTEGER, refresh: Number.MAX_SAFE_INTEGER, loading: false }
        : { config, response: null, valid: 0, refresh: 0, loading: false };
      this.#states.set(key, state);
    }
    return state;
  }

  #update(state: StapleState): void {
    const c = state.config;
    if (c.responder === null || c.issuer === null || state.loading || state.refresh >= this.#now()) return;
    state.loading = true;
    const certificate = Buffer.from(c.certificate, 'base64');
    const issuer = Buffer.from(c.issuer, 'base64');
    const url = new URL(c.responder);
    const base64 = ocspRequest(certificate, issuer).toString('base64');
    const path = `${url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`}${encodeURIComponent(base64)}`;
    const where = ` while requesting certificate status, responder: ${url.hostname}, certificate: "${c.name}"`;
    const fail = (message: string): void => {
      state.loading = false;
      state.refresh = this.#now() + RETRY_AFTER_ERROR_MS;
      this.#log().log('error', `${message}${where}`);
    };
    const req = request({ host: url.hostname, port: url.port === '' ? 80 : Number(url.port), path, method: 'GET', timeout: RESPONDER_TIMEOUT_MS }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.destroy();
          fail('OCSP responder sent too long response');
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        this.#pending.delete(req);
        if (size > MAX_RESPONSE_BYTES) return;
        if (res.statusCode !== 200) return fail(`OCSP responder sent invalid status "${res.statusCode ?? 0} ${res.statusMessage ?? ''}"`);
        const type = res.headers['content-type'] ?? '';
        if (type.toLowerCase() !== 'application/ocsp-response') return fail(`OCSP responder sent invalid "Content-Type" header: "${type}"`);
        this.#accept(state, Buffer.concat(chunks), certificate, issuer, fail);
      });
    });
    this.#pending.add(req);
    req.on('timeout', () => {
      req.destroy();
      fail('OCSP responder timed out (110: Connection timed out)');
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      this.#pending.delete(req);
      if (state.loading) fail(`OCSP responder request failed (${err.code ?? err.message})`);
    });
    req.end();
  }

  #accept(state: StapleState, body: Buffer, certificate: Buffer, issuer: Buffer, fail: (m: string) => void): void {
    const c = state.config;
    const now = this.#now();
    const check = checkOcspResponse(body, {
      certificate, issuer, verify: c.verify, chain: certs(c.chain), trusted: certs(c.trusted), now,
    });
    if (!check.ok) return fail(check.error);
    if (check.status !== 'good') return fail(`certificate status "${check.status}" in the OCSP response`);
    state.response = body;
    state.valid = check.nextUpdate ?? Number.MAX_SAFE_INTEGER;
    state.loading = false;
    state.refresh = Math.max(Math.min(state.valid - REFRESH_BEFORE_MS, now + REFRESH_AT_LEAST_MS), now + REFRESH_BEFORE_MS);
  }
}
