/** Raw non-blocking fds for reader/writer tests, straight from the addon's socket ops. */
import { binding } from '../../lib/native.js';

export const EAGAIN = 11;

export const sockets = {
  /** An AF_UNIX stream socketpair, both ends non-blocking. */
  pair(type: 'stream' | 'dgram' = 'stream'): [number, number] {
    return binding().socketpair(type);
  },
  write(fd: number, data: string | Uint8Array): number {
    return binding().write(fd, typeof data === 'string' ? Buffer.from(data) : data);
  },
  /** Bytes read, or a negative errno (-EAGAIN) when nothing is there. */
  read(fd: number, n = 65536): Buffer | number {
    const buf = Buffer.alloc(n);
    const got = binding().read(fd, buf);
    return got < 0 ? got : buf.subarray(0, got);
  },
  close(...fds: number[]): void {
    for (const fd of fds) binding().close(fd);
  },
};
