// Who may connect to a node and whose X-Real-IP counts: this host, and the balancers named in
// BALANCERS (in either form Node reports an IPv4 peer); nobody else.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, describe, it } from 'node:test';
import {
  clientAddress,
  peerAllowed,
  trustBalancers,
  viaProxy,
} from '../../services/node/client-address.ts';

const request = (peer: string | undefined, realIp?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: realIp === undefined ? {} : { 'x-real-ip': realIp },
  }) as unknown as IncomingMessage;

describe('client addresses across hosts', () => {
  after(() => trustBalancers(undefined, '127.0.0.1'));

  it('trusts loopback, the node own address and BALANCERS, in both address forms', () => {
    trustBalancers(['198.18.0.21'], '198.18.0.11');
    for (const peer of [undefined, '127.0.0.1', '::1', '198.18.0.21', '::ffff:198.18.0.21']) {
      assert.equal(viaProxy(peer), true, String(peer));
    }
    assert.equal(viaProxy('198.18.0.11'), true, 'this host, on the address the node binds');
    assert.equal(viaProxy('198.18.0.99'), false);
    assert.equal(clientAddress(request('::ffff:198.18.0.21', '203.0.113.7')), '203.0.113.7');
    assert.equal(
      clientAddress(request('198.18.0.99', '127.0.0.1')),
      '198.18.0.99',
      'a stranger cannot pass for this host',
    );
  });

  it('lets only those connect when BALANCERS is set, and anyone when it is not', () => {
    trustBalancers(['198.18.0.21'], '198.18.0.11');
    assert.equal(peerAllowed('198.18.0.99', true), false);
    assert.equal(peerAllowed('::ffff:198.18.0.21', true), true);
    assert.equal(peerAllowed('198.18.0.11', true), true);
    assert.equal(peerAllowed('127.0.0.1', true), true);
    assert.equal(peerAllowed('198.18.0.99', false), true);
  });

  it('compares IPv6 balancers by address, not by how they are written', () => {
    trustBalancers(['fd00:0:0::21'], 'fd00::11');
    assert.equal(peerAllowed('fd00::21', true), true);
    assert.equal(peerAllowed('FD00:0000::0011', true), true);
    assert.equal(peerAllowed('fd00::22', true), false);
    assert.equal(viaProxy('fd00::21'), true);
  });
});
