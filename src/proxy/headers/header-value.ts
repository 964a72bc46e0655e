import { ProxyError } from '../../core/errors.js';

/** What may not appear in a field value as Node writes it (RFC 9110 5.5: VCHAR, obs-text, SP, HTAB). */
const NOT_PLAIN = /[^\t\x20-\x7e\x80-\xff]/;
/** Characters that would end the header line or the head: never sent (no header injection). */
const CONTROL = /[\0-\x08\x0a-\x1f\x7f]/;

/**
 * A header value evaluated from a config template (`add_header`, `proxy_set_header`, a `return`
 * redirect, `proxy_redirect`), made safe to write: `$uri` is percent-decoded, so
 * `/%0d%0aSet-Cookie:...` would otherwise inject a header (nginx sends it as it is). A value with a
 * control character fails the request with INVALID_HEADER_VALUE; characters beyond Latin-1 (a
 * decoded UTF-8 URI) go out as their UTF-8 bytes, as nginx sends them. Values that need neither
 * (nearly all) are returned untouched after one regex test.
 */
export function sendableHeaderValue(name: string, value: string): string {
  if (!NOT_PLAIN.test(value)) return value;
  if (CONTROL.test(value)) throw new ProxyError('INVALID_HEADER_VALUE', `header "${name}"`);
  return Buffer.from(value, 'utf8').toString('latin1');
}

/** For config literals: true when the value could never be sent (sluice -t refuses it). */
export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}
