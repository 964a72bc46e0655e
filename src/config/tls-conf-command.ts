/**
 * `ssl_conf_command` / `proxy_ssl_conf_command NAME VALUE` (nginx 1.19.4): OpenSSL configuration
 * commands (SSL_CONF_cmd, file names, matched case-insensitively), applied after the other ssl
 * settings of the context, in order. Node.js exposes no SSL_CONF_cmd, so the commands with a
 * clean equivalent among its TLS options are supported and the others are refused by `-t`.
 */
import { constants } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions, SecureVersion } from 'node:tls';
import type { SslConfCommand } from './types.js';

/** SSL_CONF_cmd's `Options` names with the SSL_OP_* bit each sets, `true` when the name enables by clearing it. */
const OPTIONS: ReadonlyMap<string, readonly [number, boolean]> = new Map([
  ['sessionticket', [constants.SSL_OP_NO_TICKET, true]],
  ['compression', [constants.SSL_OP_NO_COMPRESSION, true]],
  ['encryptthenmac', [constants.SSL_OP_NO_ENCRYPT_THEN_MAC, true]],
  ['serverpreference', [constants.SSL_OP_CIPHER_SERVER_PREFERENCE, false]],
  ['norenegotiation', [constants.SSL_OP_NO_RENEGOTIATION, false]],
  ['noresumptiononrenegotiation', [constants.SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION, false]],
  ['prioritizechacha', [constants.SSL_OP_PRIORITIZE_CHACHA, false]],
  ['allownodhekex', [constants.SSL_OP_ALLOW_NO_DHE_KEX, false]],
  ['unsafelegacyrenegotiation', [constants.SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION, false]],
  ['unsafelegacyserverconnect', [constants.SSL_OP_LEGACY_SERVER_CONNECT, false]],
]);

const VERSIONS: ReadonlyMap<string, SecureVersion> = new Map([
  ['tlsv1', 'TLSv1'], ['tlsv1.1', 'TLSv1.1'], ['tlsv1.2', 'TLSv1.2'], ['tlsv1.3', 'TLSv1.3'],
]);

const ORDER: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** The commands Sluice applies, by lower-cased name, with their canonical spelling. */
const COMMANDS: ReadonlyMap<string, string> = new Map([
  ['ciphersuites', 'Ciphersuites'], ['cipherstring', 'CipherString'], ['groups', 'Groups'], ['curves', 'Curves'],
  ['signaturealgorithms', 'SignatureAlgorithms'], ['minprotocol', 'MinProtocol'], ['maxprotocol', 'MaxProtocol'],
  ['options', 'Options'],
]);

export const SUPPORTED_CONF_COMMANDS: readonly string[] = [...COMMANDS.values()];

/** The TLS options a command list edits, starting from the context's own settings. */
export interface ConfCommandBase {
  readonly ciphers: string;
  readonly secureOptions: number;
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  readonly ecdhCurve?: string | undefined;
}

export type ConfCommandOptions = Required<Pick<SecureContextOptions, 'ciphers' | 'secureOptions' | 'minVersion' | 'maxVersion'>>
  & Pick<SecureContextOptions, 'ecdhCurve' | 'sigalgs'>;

/** Splits a Node `ciphers` string into the TLS 1.2 list and the TLS 1.3 suites (named TLS_*), as Node does. */
function splitCiphers(ciphers: string): { list: string; suites: string | null } {
  const parts = ciphers.split(':');
  const suites = parts.filter((p) => p.startsWith('TLS_'));
  return { list: parts.filter((p) => !p.startsWith('TLS_')).join(':'), suites: suites.length > 0 ? suites.join(':') : null };
}

/** One `Options` value ("ServerPreference,-SessionTicket") applied to `secureOptions`, or an unknown name. */
function applyOptions(value: string, secureOptions: number): number | { unknown: string } {
  let out = secureOptions;
  for (const raw of value.split(',')) {
    const item = raw.trim();
    const off = item.startsWith('-');
    const entry = OPTIONS.get((off ? item.slice(1) : item).toLowerCase());
    if (entry === undefined) return { unknown: item };
    const [bit, inverted] = entry;
    // A name that enables a feature by clearing its NO_ bit sets it when negated, and the other way round.
    out = off !== inverted ? out & ~bit : out | bit;
  }
  return out;
}

/** The options after `commands`; a string says what is wrong with a command. */
export function applyConfCommands(commands: readonly SslConfCommand[], base: ConfCommandBase): ConfCommandOptions | string {
  let { list, suites } = splitCiphers(base.ciphers);
  const out: ConfCommandOptions = { ciphers: '', secureOptions: base.secureOptions, minVersion: base.minVersion, maxVersion: base.maxVersion };
  if (base.ecdhCurve !== undefined) out.ecdhCurve = base.ecdhCurve;
  for (const { name, value } of commands) {
    switch (name) {
      case 'Ciphersuites': suites = value; break;
      case 'CipherString': list = value; break;
      case 'Groups': case 'Curves': out.ecdhCurve = value; break;
      case 'SignatureAlgorithms': out.sigalgs = value; break;
      case 'MinProtocol': case 'MaxProtocol': {
        const v = VERSIONS.get(value.toLowerCase());
        if (v === undefined) return `"${value}" is not a protocol Sluice offers; use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3`;
        if (name === 'MinProtocol') out.minVersion = v;
        else out.maxVersion = v;
        break;
      }
      default: {
        const r = applyOptions(value, out.secureOptions);
        if (typeof r !== 'number') return `unknown option "${r.unknown}"; Sluice maps ${[...OPTIONS.keys()].length} of OpenSSL's: SessionTicket, Compression, EncryptThenMac, ServerPreference, NoRenegotiation, NoResumptionOnRenegotiation, PrioritizeChaCha, AllowNoDHEKEX, UnsafeLegacyRenegotiation, UnsafeLegacyServerConnect (each may start with "-")`;
        out.secureOptions = r;
      }
    }
  }
  if (ORDER.indexOf(out.minVersion) > ORDER.indexOf(out.maxVersion)) {
    return `the lowest protocol ${out.minVersion} is above the highest ${out.maxVersion}`;
  }
  // Node sends names starting with TLS_ to SSL_CTX_set_ciphersuites and the rest to set_cipher_list.
  out.ciphers = suites === null ? list : list === '' ? suites : `${list}:${suites}`;
  return out;
}

/**
 * A `NAME VALUE` pair checked as OpenSSL will take it: the canonical command, or what is wrong
 * (an unsupported name, or a value OpenSSL refuses when a context is made with it).
 */
export function checkConfCommand(name: string, value: string): SslConfCommand | string {
  const canonical = COMMANDS.get(name.toLowerCase());
  if (canonical === undefined) return `unsupported command; Sluice applies ${SUPPORTED_CONF_COMMANDS.join(', ')} (Node.js has no general SSL_CONF_cmd)`;
  const cmd = { name: canonical, value };
  const options = applyConfCommands([cmd], { ciphers: 'DEFAULT', secureOptions: 0, minVersion: 'TLSv1', maxVersion: 'TLSv1.3' });
  if (typeof options === 'string') return options;
  try {
    createSecureContext(options);
  } catch (error) {
    return `OpenSSL refuses the value: ${(error as Error).message}`;
  }
  return cmd;
}
