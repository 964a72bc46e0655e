import { STATUS_CODES } from 'node:http';

/** nginx's reason phrases (ngx_http_status_lines and its error pages) where they differ from Node's table. */
const REASONS: Readonly<Record<number, string>> = {
  405: 'Not Allowed',
  408: 'Request Time-out',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Large',
  416: 'Requested Range Not Satisfiable',
  494: 'Request Header Or Cookie Too Large',
  499: 'Client Closed Request',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
};

/** Pages whose text differs from the status line's reason (nginx's ngx_http_error_401_page). */
const PAGE_REASONS: Readonly<Record<number, string>> = { 401: 'Authorization Required' };

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? STATUS_CODES[status] ?? 'Unknown';
}

/**
 * The statuses nginx has a page for (ngx_http_error_pages); for any other status its special
 * response is empty (Content-Length: 0, no Content-Type), e.g. `try_files $uri =418;`.
 */
export function hasErrorPage(status: number): boolean {
  return (status >= 301 && status <= 303) || status === 307 || status === 308 || (status >= 400 && status <= 416)
    || status === 421 || status === 429 || (status >= 494 && status <= 498) || (status >= 500 && status <= 505) || status === 507;
}

/** The error page nginx sends, signed by Sluice (`signature`: see server-tokens.ts). */
export function errorPage(status: number, detail?: string, title = `${status} ${PAGE_REASONS[status] ?? reasonPhrase(status)}`, signature = 'sluice'): string {
  const heading = `${status} ${PAGE_REASONS[status] ?? reasonPhrase(status)}`;
  const extra = detail ? `<center>${detail}</center>\r\n` : '';
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${heading}</h1></center>\r\n${extra}<hr><center>${signature}</center>\r\n</body>\r\n</html>\r\n`;
}
