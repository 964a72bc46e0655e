/**
 * The two HTTP/1.1 front ends a proxy can start with (issue 15 item 1): the lean one
 * (server/lean-front.ts) and Node's HTTP server alone (SLUICE_FRONT=node), for suites that run
 * the same requests against both.
 */
export type Front = 'lean' | 'node';
export const FRONTS: readonly Front[] = ['lean', 'node'];

/** Starts the proxy with this front end (read by the proxy server when it listens). */
export async function withFront<T>(front: Front, start: () => Promise<T>): Promise<T> {
  const before = process.env['SLUICE_FRONT'];
  process.env['SLUICE_FRONT'] = front;
  try {
    return await start();
  } finally {
    if (before === undefined) delete process.env['SLUICE_FRONT'];
    else process.env['SLUICE_FRONT'] = before;
  }
}
