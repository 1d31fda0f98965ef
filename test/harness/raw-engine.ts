// An Engine.IO client at the frame level, for playing a hostile client: it sends whatever frames
// the test writes (several CONNECTs at once, broken packets) and records every frame it gets.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export interface RawSocket {
  readonly ws: WebSocket;
  /** Every text frame received so far, the Engine.IO open packet included. */
  readonly frames: string[];
  /** When each of the server's pings arrived (performance.now()). */
  readonly pings: number[];
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;
  send(...frames: string[]): void;
  /** Waits until `count` received frames match, or rejects after timeoutMs. */
  waitFrames(
    match: (frame: string) => boolean,
    count: number,
    timeoutMs?: number,
  ): Promise<string[]>;
  close(): void;
}

/** A WebSocket from 127.0.<net>.1 to the kit's Engine.IO endpoint, opened and ready. It answers
 * the server's pings, as any client must, so that only the test decides what breaks; `pong`,
 * told how many pings have come, says whether to answer the last (a client gone silent). */
export function rawSocket(
  baseUrl: string,
  net: number,
  { pong = () => true }: { pong?: (pings: number) => boolean } = {},
): Promise<RawSocket> {
  const url = `${baseUrl.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const ws = new WebSocket(url, { localAddress: `127.0.${net}.1`, perMessageDeflate: false });
  const frames: string[] = [];
  const pings: number[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    const text = data.toString();
    if (text === '2') {
      pings.push(performance.now());
      if (pong(pings.length)) ws.send('3');
    }
    frames.push(text);
    for (const wake of waiters) wake();
  });
  const closed = new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    ws.once('error', () => resolve());
  });
  const socket: RawSocket = {
    ws,
    frames,
    pings,
    closed,
    send: (...out) => {
      for (const frame of out) ws.send(frame);
    },
    waitFrames: (match, count, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.filter(match);
          if (found.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `${frames.filter(match).length} of ${count} expected frames within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => ws.terminate(),
  };
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('message', () => resolve(socket));
  });
}

/** A polling handshake from 127.0.<net>.1: the new session's id. */
export async function pollingSession(baseUrl: string, net: number): Promise<string> {
  const body = await polling(baseUrl, net, 'GET', '');
  return (JSON.parse(body.slice(1)) as { sid: string }).sid;
}

/** One long-polling request (GET to read, POST to send) of session `sid`, from 127.0.<net>.1. */
export function polling(
  baseUrl: string,
  net: number,
  method: 'GET' | 'POST',
  body: string,
  sid?: string,
): Promise<string> {
  const query = `EIO=4&transport=polling${sid ? `&sid=${sid}` : ''}`;
  const agent = new Agent({ localAddress: `127.0.${net}.1` });
  return new Promise((resolve, reject) => {
    const req = request(
      `${baseUrl}/socket.io/?${query}`,
      { method, agent, timeout: 10_000, headers: { 'content-type': 'text/plain' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(text)
            : reject(new Error(`${method} ${res.statusCode}: ${text}`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('polling request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
