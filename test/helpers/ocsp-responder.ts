import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate the responder knows, and what it answers about it. */
export interface OcspEntry {
  readonly certFile: string;
  readonly status: 'good' | 'revoked';
}

/** What a responder answers, see {@link OcspResponder.configure}. */
export interface OcspResponderOptions {
  /** The issuer of the certificates asked about (PEM files). */
  readonly caCert: string;
  /** Who signs the answers: the issuer by default; another key makes answers that do not verify. */
  readonly signerCert?: string;
  readonly signerKey: string;
  readonly entries: readonly OcspEntry[];
  /** Answer every request with this HTTP status instead (a failing responder). */
  readonly httpStatus?: number;
}

/** A running responder. */
export interface OcspResponder {
  /** `http://127.0.0.1:PORT/ocsp` */
  readonly url: string;
  /** Every request (DER), in order. */
  readonly requests: Buffer[];
  /** Every response sent (DER), in order. */
  readonly responses: Buffer[];
  /** Sets what it answers (until then, 503): it may be started before the certificates that name its URL exist. */
  configure(o: OcspResponderOptions): void;
  close(): Promise<void>;
}

/** OpenSSL's CA index line: status, expiry, revocation time, serial, file, subject. */
function indexLine(e: OcspEntry): string {
  const x = new X509Certificate(readFileSync(e.certFile));
  const subject = `/${x.subject.split('\n').join('/')}`;
  return e.status === 'good'
    ? `V\t351231235959Z\t\t${x.serialNumber}\tunknown\t${subject}`
    : `R\t351231235959Z\t240101000000Z\t${x.serialNumber}\tunknown\t${subject}`;
}

/**
 * An OCSP responder (RFC 6960 over HTTP GET and POST) on 127.0.0.1 port 0, its files in `dir`:
 * each request is answered by `openssl ocsp` (run per request, so nothing listens on a fixed port)
 * from an index of the configured certificates, signed by the signer (the CA unless told
 * otherwise), valid for a day.
 */
export async function startOcspResponder(dir: string, options?: OcspResponderOptions): Promise<OcspResponder> {
  const index = join(dir, 'ocsp-index.txt');
  let o: OcspResponderOptions | null = null;
  const configure = (next: OcspResponderOptions): void => {
    writeFileSync(index, next.entries.map((e) => `${indexLine(e)}\n`).join(''));
    writeFileSync(`${index}.attr`, 'unique_subject = no\n');
    o = next;
  };
  if (options !== undefined) configure(options);
  const requests: Buffer[] = [];
  const responses: Buffer[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const der = req.method === 'POST'
        ? Buffer.concat(chunks)
        : Buffer.from(decodeURIComponent((req.url ?? '').replace(/^\/ocsp\/?/, '')), 'base64');
      requests.push(der);
      const now: OcspResponderOptions | null = o;
      if (now === null || now.httpStatus !== undefined) {
        res.writeHead(now?.httpStatus ?? 503).end();
        return;
      }
      const id = n++;
      const reqFile = join(dir, `ocsp-req-${id}.der`);
      const respFile = join(dir, `ocsp-resp-${id}.der`);
      writeFileSync(reqFile, der);
      run('openssl', [
        'ocsp', '-index', index, '-CA', now.caCert, '-rsigner', now.signerCert ?? now.caCert, '-rkey', now.signerKey,
        '-reqin', reqFile, '-respout', respFile, '-ndays', '1',
      ], { timeout: 10_000 }).then(() => {
        const body = readFileSync(respFile);
        responses.push(body);
        res.writeHead(200, { 'Content-Type': 'application/ocsp-response' }).end(body);
      }, (err: unknown) => {
        res.writeHead(500).end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/ocsp`,
    requests,
    responses,
    configure,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
