// One-shot checks of a part from outside: does it answer, and what does it say.
import { request as httpsRequest } from 'node:https';
import { createClient } from 'redis';

const oneShotClient = (url: string, timeoutMs: number) =>
  createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });

async function withRedis<T>(
  url: string,
  timeoutMs: number,
  use: (c: ReturnType<typeof oneShotClient>) => Promise<T>,
) {
  const client = oneShotClient(url, timeoutMs);
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } catch {
    return undefined;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** PING over a fresh connection. */
export async function redisAnswers(url: string, timeoutMs = 2000): Promise<boolean> {
  return (await withRedis(url, timeoutMs, (c) => c.ping())) === 'PONG';
}

/** Redis INFO as a map, or undefined when Redis does not answer. */
export async function redisInfo(url: string): Promise<Record<string, string> | undefined> {
  return infoMap(await withRedis(url, 2000, (c) => c.info()));
}

/** CLUSTER INFO of one cluster node as a map, or undefined when it does not answer. */
export async function redisClusterInfo(url: string): Promise<Record<string, string> | undefined> {
  return infoMap(await withRedis(url, 2000, (c) => c.sendCommand<string>(['CLUSTER', 'INFO'])));
}

function infoMap(info: string | undefined): Record<string, string> | undefined {
  if (info === undefined) return undefined;
  return Object.fromEntries(
    info
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':', 2) as [string, string]),
  );
}

/** GET url answered with a 2xx within a second. */
export async function httpOk(url: string): Promise<boolean> {
  return (await httpFailure(url)) === undefined;
}

/** Why GET url was not answered with a 2xx within timeoutMs (`timeout`, `refused`, `HTTP 500`), or undefined. */
export async function httpFailure(url: string, timeoutMs = 1000): Promise<string | undefined> {
  if (url.startsWith('https:')) {
    const answer = await localHttps(url, timeoutMs);
    if (answer === undefined) return 'no answer';
    return answer.status >= 200 && answer.status < 300 ? undefined : `HTTP ${answer.status}`;
  }
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.ok ? undefined : `HTTP ${response.status}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    if ((error as Error).name === 'TimeoutError') return 'timeout';
    return cause === 'ECONNREFUSED' ? 'refused' : (cause ?? (error as Error).message);
  }
}

/** The body of GET url when it is answered with a 2xx within timeoutMs, else undefined. */
export async function httpText(url: string, timeoutMs = 2000): Promise<string | undefined> {
  if (url.startsWith('https:')) {
    const answer = await localHttps(url, timeoutMs);
    return answer && answer.status >= 200 && answer.status < 300 ? answer.body : undefined;
  }
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return response.ok ? body : undefined;
  } catch {
    return undefined;
  }
}

/** GET url as JSON, when answered with a 2xx; else undefined. */
export async function httpJson(url: string): Promise<Record<string, unknown> | undefined> {
  const body = await httpText(url);
  try {
    return body === undefined ? undefined : (JSON.parse(body) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

/**
 * GET over HTTPS on this host, where the certificate names the public host, not 127.0.0.1: the
 * kit's own probes of its nginx do not verify it (they never leave the machine).
 */
export function localHttps(
  url: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
