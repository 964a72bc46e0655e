/**
 * nginx's escaping (ngx_escape_uri, ngx_escape_html, ngx_escape_json), byte for byte: the same
 * characters are escaped, with upper-case hex. The functions take "byte strings" (one char per
 * byte, latin1) as nginx sees bytes; {@link utf8Bytes} turns a decoded URI into one.
 */

/** Which bytes ngx_escape_uri escapes, by its type (bit b of word b >> 5). */
const TABLES = {
  /** NGX_ESCAPE_URI: " ", "#", "%", "?", controls and bytes >= 0x7f. */
  uri: new Uint32Array([0xffffffff, 0xd000002d, 0x50000000, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
  /** NGX_ESCAPE_ARGS: " ", "\"", "#", "%", "&", "+", ";", "?", controls and bytes >= 0x7f. */
  args: new Uint32Array([0xffffffff, 0xd800086d, 0x50000000, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
  /** NGX_ESCAPE_HTML (SSI's `echo encoding=url`): " ", "\"", "#", "%", "'", "<", ">", controls and bytes >= 0x7f. */
  html: new Uint32Array([0xffffffff, 0x500000ad, 0x00000000, 0x80000000, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
  /** NGX_ESCAPE_URI_COMPONENT: everything but ALPHA, DIGIT, "-", ".", "_", "~". */
  component: new Uint32Array([0xffffffff, 0xfc009fff, 0x78000001, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
} as const;

const HEX = '0123456789ABCDEF';

/** A decoded string as the bytes nginx works on (UTF-8), one char per byte. */
export function utf8Bytes(s: string): string {
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** ngx_escape_uri over a byte string. */
export function escapeUri(bytes: string, type: keyof typeof TABLES): string {
  const table = TABLES[type];
  let out = '';
  let from = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i) & 0xff;
    if (((table[b >> 5] as number) & (1 << (b & 31))) === 0) continue;
    out += `${bytes.slice(from, i)}%${HEX[b >> 4]!}${HEX[b & 15]!}`;
    from = i + 1;
  }
  return from === 0 ? bytes : out + bytes.slice(from);
}

/** ngx_escape_html: `<`, `>`, `&` and `"`. */
export function escapeHtml(s: string): string {
  return /[<>&"]/.test(s) ? s.replace(/[<>&"]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : '&quot;')) : s;
}

const JSON_SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/** ngx_escape_json: `"` and `\` get a backslash, control bytes \n \r \t \b \f or \u00XX; other bytes pass. */
export function escapeJson(s: string): string {
  return s.replace(/["\\\x00-\x1f]/g, (c) => {
    if (c === '"' || c === '\\') return `\\${c}`;
    const code = c.charCodeAt(0);
    return JSON_SHORT[c] ?? `\\u00${HEX[code >> 4]!}${HEX[code & 15]!}`;
  });
}
