/**
 * The body of a page the proxy answers itself (nginx's ngx_http_error_pages, byte for byte, with
 * "sluice" in the footer): `status` is the whole status line tail, e.g. '502 Bad Gateway'. Written
 * out here, not imported from src, so that a change to the proxy's pages fails the tests.
 */
export function errorPage(status: string): string {
  return `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n`
    + '<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n';
}
