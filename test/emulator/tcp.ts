/**
 * A plain TCP health check from this machine: connect to host:port and read what the
 * other side says first (a banner), or fail with one line after a deadline.
 */
import { createConnection } from 'node:net';

/** The first bytes host:port sends after a connect, as text; rejects on error or timeout. */
export function tcpGreeting(host: string, port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    let text = '';
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(`${host}:${String(port)}: ${why}`));
    };
    socket.setTimeout(timeoutMs, () => {
      fail(
        `no answer within ${String(timeoutMs / 1000)} s${text ? ` (got ${JSON.stringify(text)})` : ''}`,
      );
    });
    socket.on('data', (b: Buffer) => {
      text += b.toString('utf8');
    });
    socket.on('error', (error) => {
      fail(error.message);
    });
    socket.on('end', () => {
      socket.destroy();
      resolve(text);
    });
  });
}
