// Each new user costs Redis keys that live for days, so one client address may create only so
// many: a burst that a NAT'd office does not reach in a morning, then one a second. Kept per node:
// nginx sends an address to one node (ip_hash), so this is close to a per-address budget.
import { TokenBucket } from './rate-limit.ts';

export const NEW_USERS = { burst: 100, perSecond: 1 } as const;
/** Addresses tracked at once; a flood of addresses cannot grow the map past this. */
const MAX_ADDRESSES = 10_000;

export class NewUserLimit {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly burst: number = NEW_USERS.burst,
    private readonly perSecond: number = NEW_USERS.perSecond,
    private readonly maxAddresses = MAX_ADDRESSES,
  ) {}

  /** Takes one new user from the address's budget; false when it is spent. */
  take(address: string): boolean {
    let bucket = this.buckets.get(address);
    if (!bucket) {
      if (this.buckets.size >= this.maxAddresses) this.makeRoom();
      bucket = new TokenBucket(this.perSecond, this.burst);
      this.buckets.set(address, bucket);
    }
    return bucket.take();
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Forgets buckets that have refilled (they hold nothing a new one would not); failing that,
   * the oldest half, which errs towards letting an address in. */
  private makeRoom(): void {
    for (const [address, bucket] of this.buckets) if (bucket.full()) this.buckets.delete(address);
    if (this.buckets.size < this.maxAddresses) return;
    let drop = Math.ceil(this.buckets.size / 2);
    for (const address of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(address);
    }
  }
}
