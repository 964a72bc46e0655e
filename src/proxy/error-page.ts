import { STATUS_CODES } from 'node:http';

/** nginx's reason phrases where they differ from Node's table. */
const REASONS: Readonly<Record<number, string>> = {
  494: 'Request Header Or Cookie Too Large',
  499: 'Client Closed Request',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? STATUS_CODES[status] ?? 'Unknown';
}

/** The error page nginx sends, signed by Sluice. */
export function errorPage(status: number, detail?: string): string {
  const title = `${status} ${reasonPhrase(status)}`;
  const extra = detail ? `<center>${detail}</center>\r\n` : '';
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n${extra}<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n`;
}
