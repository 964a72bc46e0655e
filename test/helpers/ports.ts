import { createServer, type AddressInfo } from 'node:net';

/**
 * A port on 127.0.0.1 that was free a moment ago (the kernel picked it for port 0; the listener
 * is closed again). Only for a child that must be told its port before it says which one it
 * bound, e.g. to connect the instant its pid file appears; everything else listens on port 0.
 */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A loopback port where nothing listens, so a connection to it is refused at once (a dead
 * upstream server). The same kernel pick as {@link unusedPort}, named for what a test means.
 */
export const refusedPort = unusedPort;
