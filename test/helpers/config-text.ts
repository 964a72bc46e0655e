/**
 * Inline config text for `startTestProxy`: `http` wrapped in `events {}` and `http { }`, with
 * main-context lines (`error_log stderr info;`, `worker_processes 2;`) before it. With no `main`
 * the text starts at `events {}`, so the line numbers in config errors count from there.
 *
 * @example startTestProxy(conf(`server { listen 127.0.0.1:0; return 200 "ok"; }`), { t })
 */
export function conf(http: string, main = ''): string {
  return `${main === '' ? '' : `${main}\n`}events {}\nhttp {\n${http}\n}`;
}

/** {@link conf} with the error log at info, where nginx logs client time-outs and closes. */
export const infoConf = (http: string): string => conf(http, 'error_log stderr info;');
