// One buffer per broadcast frame, so that each recipient costs one plain write.
//
// socket.io-adapter encodes a broadcast's WebSocket frame once for all its recipients, as two
// buffers: the frame header and the payload. ws writes such a pair with cork, write, write,
// uncork, which Node's stream turns into a writev through its buffered-chunks path, for every
// recipient. Joined once per broadcast, the pair is one buffer, and ws writes it with a single
// write. Measured with `npm run bench:ab` (500 subscribers, 50 publications/s, 4 A B B A runs):
// 0.95 × the server CPU per delivery, every pair lower.
//
// The frame is made by the adapter's `_encode`, which socket.io-adapter keeps private: an
// adapter without it is left as it is (test/unit/frames.test.ts fails if that ever happens).
import type { Namespace } from 'socket.io';

interface PacketOptions {
  wsPreEncodedFrame?: Buffer[];
}
interface Encoding {
  _encode?(packet: unknown, options: PacketOptions): unknown;
}

/** `factory` (an adapter class or the function the Redis adapters return), its frames joined. */
export function withOneBufferFrames<F>(factory: F): F {
  const Make = factory as unknown as new (nsp: Namespace) => Encoding;
  // Socket.IO calls the factory with `new`: a function that returns an object gives that object.
  function make(nsp: Namespace): Encoding {
    const adapter = new Make(nsp);
    const encode = adapter._encode;
    if (typeof encode !== 'function') return adapter;
    adapter._encode = function (this: Encoding, packet, options) {
      const encoded = encode.call(this, packet, options);
      const frame = options.wsPreEncodedFrame;
      if (frame?.length === 2) options.wsPreEncodedFrame = [Buffer.concat(frame)];
      return encoded;
    };
    return adapter;
  }
  return make as unknown as F;
}
