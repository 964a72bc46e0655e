/** nginx's stub_status page, byte for byte (ngx_http_stub_status_module.c, trailing spaces included). */
import type { ConnectionFigures } from '../observability/stats.js';

export function stubStatusText(c: ConnectionFigures): string {
  return `Active connections: ${c.active} \n`
    + 'server accepts handled requests\n'
    + ` ${c.accepted} ${c.handled} ${c.requests} \n`
    + `Reading: ${c.reading} Writing: ${c.writing} Waiting: ${c.waiting} \n`;
}
