/**
 * The daemon's last resort: an exception thrown from an event listener (outside any request's
 * safety net, src/proxy/guard.ts) or a promise rejected with nobody listening would otherwise end
 * the process and every connection and tunnel in it. The daemon (single process or each worker)
 * reports it instead (`alert` with the stack, counted in `sluice_internal_errors_total`) and keeps
 * serving. Only the daemon installs this: a library user's process keeps its own policy.
 */
export type UncaughtReporter = (err: unknown, origin: 'uncaughtException' | 'unhandledRejection') => void;

/** Installs the process-wide handlers; the returned function removes them. */
export function installLastResort(report: UncaughtReporter): () => void {
  const onException = (err: unknown): void => report(err, 'uncaughtException');
  const onRejection = (reason: unknown): void => report(reason, 'unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.removeListener('uncaughtException', onException);
    process.removeListener('unhandledRejection', onRejection);
  };
}
