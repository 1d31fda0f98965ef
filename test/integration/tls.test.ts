// TLS on PORT (TLS_CERT, TLS_KEY): a Socket.IO client that trusts the test's own CA connects over
// HTTPS long-polling and upgrades to WSS; one that does not trust it is refused; plain HTTP on
// the same port is redirected to HTTPS; plain requests speak HTTP/2.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { io, type Socket } from 'socket.io-client';
import { type Kit, launchKit } from '../harness/kit.ts';

/** A CA and a server certificate for 127.0.0.1 and localhost, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 30_000 });
  const newKey = ['-newkey', 'rsa:2048', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=kit test CA',
  );
  openssl(
    'req',
    ...newKey,
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    ...['-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
    ...['-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'],
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

describe('TLS on PORT', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kit-tls-'));
  let kit: Kit;
  let ca: string;
  before(async () => {
    const files = makeCertificates(dir);
    ca = readFileSync(files.ca, 'utf8');
    kit = await launchKit({
      nodes: 2,
      env: {
        TLS_CERT: files.cert,
        TLS_KEY: files.key,
        APP_MODULE: 'test/fixtures/echo-app.ts',
      },
    });
  });
  after(async () => {
    await kit?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves Socket.IO over HTTPS polling, upgraded to WSS, to a client that trusts the CA', async () => {
    assert.match(kit.url, /^https:/);
    const socket: Socket = io(kit.url, {
      forceNew: true,
      reconnection: false,
      transports: ['polling', 'websocket'],
      ca,
    } as Parameters<typeof io>[1]);
    try {
      // Which transport the session opened on, and what it upgraded to: read as they happen,
      // since the upgrade may well finish before 'connect' is seen.
      let opened = '';
      const upgraded = new Promise<string>((resolve) =>
        socket.io.once('open', () => {
          opened = socket.io.engine.transport.name;
          socket.io.engine.once('upgrade', (transport: { name: string }) =>
            resolve(transport.name),
          );
        }),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      assert.equal(await upgraded, 'websocket');
      assert.equal(opened, 'polling', 'it starts on long-polling');
      const me = (await socket.timeout(5_000).emitWithAck('whoami')) as { node: string };
      assert.match(me.node, /^node-\d+$/);
    } finally {
      socket.disconnect();
    }
  });

  it('is refused by a client that does not trust the certificate', async () => {
    const socket = io(kit.url, { forceNew: true, reconnection: false, transports: ['websocket'] });
    const error = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    socket.disconnect();
    assert.ok(error instanceof Error);
  });

  it('redirects plain HTTP on the same port to HTTPS', async () => {
    const port = new URL(kit.url).port;
    const answer = await new Promise<{ status: number; location?: string }>((resolve, reject) => {
      request(`http://127.0.0.1:${port}/healthz`, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      })
        .on('error', reject)
        .end();
    });
    assert.equal(answer.status, 301);
    assert.equal(answer.location, `https://127.0.0.1:${port}/healthz`);
  });

  it('answers plain requests over HTTP/2', async () => {
    const session = http2Connect(kit.url, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/healthz' });
        req.on('response', (headers) => resolve(Number(headers[':status'])));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
  });
});
