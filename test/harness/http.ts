// Plain HTTP requests from a chosen source address (127.0.N.1), which fetch cannot do: nginx
// limits new sessions per client address, and a test that plays many clients must look like many.
// `fresh`: the request gets a connection of its own, where a kept-alive one that nginx's reload
// closes while idle (a browser retries it, fetch does not) must not read as a request the kit
// failed. Not by default: a test posting hundreds a second from one address would run out of
// ports (TIME_WAIT), as the multi-host recovery test did.
import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  body: string;
}

export function httpFrom(
  /** Third octet of 127.0.N.1, or the source address itself. */
  net: number | string,
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; fresh?: boolean } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method ?? 'GET',
        headers: init.headers,
        localAddress: typeof net === 'string' ? net : `127.0.${net}.1`,
        ...(init.fresh ? { agent: false } : {}),
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end(init.body);
  });
}
