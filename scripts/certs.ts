/**
 * `npm run certs [-- DIR]`: a local certificate authority and certificates signed by it, for the
 * TLS examples (`examples/tls/`) and for trying `https://` and `wss://` locally. Written to
 * `certs/` (gitignored) unless a directory is given. Tests call `generateCertificates` into a
 * temporary directory at run time, so nothing depends on checked-in keys that expire.
 *
 * Uses the `openssl` command line (Node's crypto makes keys but cannot sign certificates).
 * Keys are ECDSA P-256, unencrypted PKCS#8 PEM unless a pass phrase is asked for.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

/** One certificate to issue. */
export interface CertRequest {
  /** File names: NAME.crt and NAME.key. */
  readonly name: string;
  /** Subject common name. @default the first DNS name, else `name` */
  readonly commonName?: string;
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  /** 'server' (serverAuth) or 'client' (clientAuth). @default 'server' */
  readonly usage?: 'server' | 'client';
  /** Name of the CA that signs it (a CA made by `cas`). @default the first CA */
  readonly issuer?: string;
  /** Also write NAME.enc.key encrypted with this pass phrase (AES-256). */
  readonly passphrase?: string;
  /** Validity in days. @default 365 */
  readonly days?: number;
}

/** What was written: absolute paths by name. */
export interface GeneratedFiles {
  readonly dir: string;
  /** CA name -> { cert, key }. */
  readonly cas: ReadonlyMap<string, { readonly cert: string; readonly key: string }>;
  /** Certificate name -> { cert, key, encryptedKey? }. */
  readonly certs: ReadonlyMap<string, { readonly cert: string; readonly key: string; readonly encryptedKey?: string }>;
}

export interface GenerateOptions {
  /** Certificate authorities to make (NAME.crt / NAME.key), the first is the default issuer. @default ['ca'] */
  readonly cas?: readonly { readonly name: string; readonly commonName: string }[];
  readonly certs: readonly CertRequest[];
  /** The openssl binary. @default 'openssl' */
  readonly openssl?: string;
}

async function openssl(bin: string, args: readonly string[], cwd: string): Promise<void> {
  try {
    await run(bin, args, { cwd, timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`"${bin}" was not found; install OpenSSL (Debian: apt-get install -y openssl)`);
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes the CAs, then each certificate signed by its issuer. Files are written to `dir`. */
export async function generateCertificates(dir: string, options: GenerateOptions): Promise<GeneratedFiles> {
  const bin = options.openssl ?? 'openssl';
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const cas = new Map<string, { cert: string; key: string }>();
  for (const ca of options.cas ?? [{ name: 'ca', commonName: 'Sluice Local CA' }]) {
    await openssl(bin, [
      'req', '-x509', '-new', ...EC_KEY, '-keyout', `${ca.name}.key`, '-out', `${ca.name}.crt`, '-days', '3650',
      '-subj', `/CN=${ca.commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', 'subjectKeyIdentifier=hash',
    ], out);
    cas.set(ca.name, { cert: join(out, `${ca.name}.crt`), key: join(out, `${ca.name}.key`) });
  }
  const firstCa = cas.keys().next().value as string;
  const certs = new Map<string, { cert: string; key: string; encryptedKey?: string }>();
  // Independent certificates are issued in parallel; each has its own files.
  await Promise.all(options.certs.map(async (c) => {
    const issuer = cas.get(c.issuer ?? firstCa);
    if (issuer === undefined) throw new Error(`certificate "${c.name}": no CA named "${c.issuer ?? ''}"`);
    const alt = [...(c.dnsNames ?? []).map((d) => `DNS:${d}`), ...(c.ips ?? []).map((i) => `IP:${i}`)];
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${c.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid,issuer',
      ...(alt.length > 0 ? [`subjectAltName=${alt.join(',')}`] : []),
    ];
    writeFileSync(join(out, `${c.name}.ext`), `${ext.join('\n')}\n`);
    const cn = c.commonName ?? c.dnsNames?.[0] ?? c.name;
    await openssl(bin, ['req', '-new', ...EC_KEY, '-keyout', `${c.name}.key`, '-out', `${c.name}.csr`, '-subj', `/CN=${cn}`], out);
    await openssl(bin, [
      'x509', '-req', '-in', `${c.name}.csr`, '-CA', issuer.cert, '-CAkey', issuer.key,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', String(c.days ?? 365),
      '-out', `${c.name}.crt`, '-extfile', `${c.name}.ext`,
    ], out);
    rmSync(join(out, `${c.name}.csr`), { force: true });
    rmSync(join(out, `${c.name}.ext`), { force: true });
    const files: { cert: string; key: string; encryptedKey?: string } = { cert: join(out, `${c.name}.crt`), key: join(out, `${c.name}.key`) };
    if (c.passphrase !== undefined) {
      await openssl(bin, ['pkey', '-in', `${c.name}.key`, '-aes256', '-passout', `pass:${c.passphrase}`, '-out', `${c.name}.enc.key`], out);
      files.encryptedKey = join(out, `${c.name}.enc.key`);
    }
    certs.set(c.name, files);
  }));
  return { dir: out, cas, certs };
}

/** The set `npm run certs` writes: a CA, a server certificate for localhost and a client certificate. */
export const LOCAL_SET: GenerateOptions = {
  cas: [{ name: 'ca', commonName: 'Sluice Local CA' }],
  certs: [
    { name: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'] },
    { name: 'client', commonName: 'sluice-client', usage: 'client' },
  ],
};

async function main(): Promise<void> {
  const dir = process.argv[2] ?? resolve(fileURLToPath(new URL('../..', import.meta.url)), 'certs');
  const files = await generateCertificates(dir, LOCAL_SET);
  process.stdout.write(`wrote a local CA and certificates to ${files.dir}:\n`);
  for (const [name, f] of files.cas) process.stdout.write(`  CA ${name}: ${f.cert}\n`);
  for (const [name, f] of files.certs) process.stdout.write(`  ${name}: ${f.cert} ${f.key}\n`);
  process.stdout.write('trust the CA in a client with e.g. `curl --cacert certs/ca.crt https://localhost:8443/`\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`certs: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
