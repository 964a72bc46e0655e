/**
 * The body of a page the proxy answers itself (nginx's ngx_http_error_pages, byte for byte, with
 * `signature`, "sluice" by default, in the footer): `status` is the whole status line tail, e.g.
 * '502 Bad Gateway'. Written out here, not imported from src, so that a change to the proxy's
 * pages fails the tests.
 */
export function errorPage(status: string, signature = 'sluice'): string {
  return `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n`
    + `<hr><center>${signature}</center>\r\n</body>\r\n</html>\r\n`;
}
