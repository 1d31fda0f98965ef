// A WebSocket client for the load generators, at the byte level: one TCP socket, the upgrade
// request, and a frame reader that hands each text frame over as a slice of the bytes read, so
// that a generator can pick the timestamp out of a message without making a string of it.
// The `ws` client decodes every frame into a string and emits an event for it: measured, the
// generators then spent as much CPU per delivery as the servers they measure (11–15 s per
// million), and the generator, not the server, was the ceiling.
//
// What a load generator needs only: text frames from the server (unmasked, unfragmented, as
// every server here sends them), WebSocket ping answered with pong, close. Frames it sends carry
// the all-zero mask (RFC 6455 asks for a mask, any key will do), so nothing is XORed.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

export interface LeanHandlers {
  /** The upgrade was answered 101. */
  onOpen(): void;
  /** A text frame: its payload is `bytes[start, end)` (valid only during the call). */
  onText(bytes: Buffer, start: number, end: number): void;
  /** The connection ended; `error` when it failed (before or after opening). */
  onClose(error?: Error): void;
}

export interface LeanSocket {
  send(text: string): void;
  close(): void;
}

/** Every connection of a generator reads into this (one read is handled before the next). */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const TEXT = 0x1;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

/** A frame from a client: FIN, the opcode, the mask bit with the length, the zero key. */
function frame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + length);
  out[0] = 0x80 | opcode;
  if (head === 2) out[1] = 0x80 | length;
  else if (head === 4) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(length), 2);
  }
  out.writeUInt32BE(0, head);
  payload.copy(out, head + 4);
  return out;
}

export function leanConnect(url: string, localAddress: string, on: LeanHandlers): LeanSocket {
  const target = new URL(url);
  // Reads land in one buffer per generator, reused (`onread`): no Buffer and no stream 'data'
  // event per read, which is what a read cost the generator most.
  const socket = connect({
    host: target.hostname,
    port: Number(target.port || 80),
    localAddress,
    noDelay: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (size: number, buffer: Uint8Array) => {
        onData(Buffer.from(buffer.buffer, buffer.byteOffset, size));
        return true;
      },
    },
  });
  let upgraded = false;
  let ended = false;
  let pending: Buffer | undefined;
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    socket.destroy();
    on.onClose(error);
  };

  socket.once('connect', () => {
    socket.write(
      `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
  });
  function onData(chunk: Buffer) {
    const bytes = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let at = 0;
    if (!upgraded) {
      const headEnd = bytes.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        pending = Buffer.from(bytes);
        return;
      }
      const status = bytes.toString('latin1', 0, bytes.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101')) return end(new Error(`upgrade refused: ${status}`));
      upgraded = true;
      on.onOpen();
      at = headEnd + 4;
    }
    while (bytes.length - at >= 2) {
      const opcode = (bytes[at] as number) & 0x0f;
      const second = bytes[at + 1] as number;
      let length = second & 0x7f;
      let head = 2;
      if (length === 126) {
        if (bytes.length - at < 4) break;
        length = bytes.readUInt16BE(at + 2);
        head = 4;
      } else if (length === 127) {
        if (bytes.length - at < 10) break;
        length = Number(bytes.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (second & 0x80) return end(new Error('a masked frame from the server'));
      if (bytes.length - at < head + length) break;
      const start = at + head;
      at = start + length;
      if (opcode === TEXT) on.onText(bytes, start, at);
      else if (opcode === PING) socket.write(frame(PONG, bytes.subarray(start, at)));
      else if (opcode === CLOSE) return end();
      if (ended) return;
    }
    // A frame cut by the end of this read: kept (copied: the read buffer is reused).
    if (at < bytes.length) pending = Buffer.from(bytes.subarray(at));
  }
  socket.once('error', (error) => end(error));
  socket.once('close', () => end(upgraded ? undefined : new Error('closed before the upgrade')));

  return {
    send(text) {
      if (!ended) socket.write(frame(TEXT, Buffer.from(text)));
    },
    close() {
      if (!ended && upgraded) socket.write(frame(CLOSE, Buffer.alloc(0)));
      end();
    },
  };
}

/** The integer that starts at `bytes[at]` (digits only), as the generators write timestamps. */
export function integerAt(bytes: Buffer, at: number, end: number): number {
  let n = 0;
  for (let i = at; i < end; i++) {
    const c = bytes[i] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}
