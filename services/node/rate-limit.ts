// Token buckets: `burst` at once, refilled at `perSecond`. One per socket or connection (events,
// CONNECTs), or one per key in a bounded map (new sessions, new users, failed logins per address).

export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a take() now would fail (takes nothing). */
  empty(): boolean {
    this.refill();
    return this.tokens < 1;
  }

  /** Whether the bucket has refilled to its burst: it then holds nothing worth keeping. */
  full(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }
}

/** A token bucket per key, in a map of bounded size: forgetting a full bucket loses nothing. */
export class KeyedLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 50_000,
  ) {}

  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.makeRoom();
      bucket = new TokenBucket(this.perSecond, this.burst);
      this.buckets.set(key, bucket);
    }
    return bucket.take();
  }

  /** Whether `key` has no token left now (takes none). */
  exhausted(key: string): boolean {
    return this.buckets.get(key)?.empty() ?? false;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Forgets refilled buckets; failing that, the oldest half, which errs towards letting in. */
  private makeRoom(): void {
    for (const [key, bucket] of this.buckets) if (bucket.full()) this.buckets.delete(key);
    if (this.buckets.size < this.maxKeys) return;
    let drop = Math.ceil(this.buckets.size / 2);
    for (const key of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}
