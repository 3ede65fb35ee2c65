// Package cache is a Redis read-through cache for KeyValue namespaces, built
// as a kv.Store decorator: New wraps any driver, and the wrapped store passes
// the same conformance suite (kvtest) as the driver alone.
//
// Get and MultiGet read through Redis; Put, Delete and Batch write the
// backend and then invalidate the keys in Redis before they return, so a
// client never reads a value older than its own acknowledged write. Scan is
// not cached. Values larger than Options.MaxValueBytes are not cached.
//
// # Where it sits
//
// The decorator wraps the backend store, below the PII layer: extproc
// encrypts classified fields before it calls Put and decrypts after Get, so
// Redis holds exactly the bytes the backend holds (ciphertext for PII
// fields), never plaintext.
//
// # Entries and keys
//
// A Redis key is Prefix + backend + ":" + namespace + ":" + key, with '%' and
// ':' percent-escaped in the backend and namespace names (so two pairs never
// map to one key) and the KV key appended as raw bytes (Redis keys are
// binary safe; KV keys may hold any bytes). The backend name is part of the
// key so that entries filled from one backend are never served after a
// namespace moves to another, whose versions differ. No hash tags are used:
// every script touches one key, so the cache also works on Redis Cluster.
//
// The value of a Redis key is one of
//
//	"D" + entry   a cached item: version, content type, expiry and value
//	"L" + token   a fill lease held by a reader that missed
//
// # Protocol: fill leases
//
// Racing stale fills are prevented with leases, as memcache does (Nishtala et
// al., "Scaling Memcache at Facebook", 2013), not with versions:
//
//  1. A read runs one Lua script: if the key holds an entry it is a hit; if
//     the key is absent the script stores a fresh lease token (SET PX
//     LeaseTTL) and tells the reader it may fill; if another reader's lease
//     is there the reader reads the backend and does not fill.
//  2. The lease holder reads the backend, then fills with a second script
//     that writes the entry only if the key still holds its own token.
//  3. A write commits to the backend and then DELetes the key, which removes
//     an entry and any lease alike.
//
// Why no stale fill can stick: take a write W acknowledged with version v.
// Its DEL ran after its commit. Any entry in Redis after that DEL was filled
// under a lease that still existed at fill time, hence was granted after the
// DEL (the DEL destroyed every earlier lease, and tokens are unique, so a
// later lease never validates an earlier holder). That holder read the
// backend after taking the lease, so after W's commit, and saw v or newer
// (the backend must read its primary, as both SQL drivers do).
// The race of the issue - reader A misses and reads v1, writer stores v2 and
// invalidates, A fills v1 - ends with A's fill refused: its lease is gone.
// A lease that outlives LeaseTTL also refuses the fill, which is only a lost
// fill, never a stale one.
//
// Versions would not do alone: Delete returns no version, so an invalidation
// after a delete has no version to write into a tombstone, and a tombstone
// would have to outlive every in-flight fill. Leases need neither.
//
// Within a process, concurrent Gets of one key share one flight: one Redis
// lookup and, on a miss, one backend read. Plain singleflight would break
// read-your-writes across processes: a read that starts after a write was
// acknowledged (by another extproc) could join a flight that looked in Redis
// or the backend before the write. So a read joins a flight only until the
// flight starts reading; later arrivals wait for the next flight, which
// starts when the running one ends (and then usually hits what it filled).
//
// An entry's Redis expiry is min(TTL, time until the item's ExpiresAt), and a
// hit whose ExpiresAt has passed by the local clock (the clock the SQL
// drivers expire keys by) is treated as a miss, so the cache never serves a
// key the backend has expired.
//
// # When Redis fails
//
// A failed or slow Redis never fails a request:
//
//   - A read's round trip is bounded by ClientOptions.Timeout (50 ms by
//     default). A read whose lookup fails reads the backend and does not
//     fill.
//   - Any failure opens a breaker: until a background PING succeeds, reads
//     go straight to the backend without waiting on Redis.
//   - A write waits for its invalidation up to InvalidateTimeout (500 ms),
//     longer than a read: a failed invalidation is the one failure that can
//     let another process serve a stale value (see the limits below), so a
//     merely slow Redis must not cause one. Once the background PING finds
//     Redis unreachable, writes wait only Timeout, so an outage costs a
//     write at most InvalidateTimeout, and only until the probe notices.
//   - An invalidation that fails leaves a possibly stale entry, or a lease
//     whose stale fill could still land. The key is recorded as pending
//     before the write returns; reads of a pending key bypass the cache.
//     The background loop retries the DEL and clears the key only if no
//     newer failure was recorded for it after the retry was sent - by the
//     argument above, a DEL that succeeds after the write's commit makes the
//     key safe again. A later successful invalidation of the key clears it
//     as well.
//   - The pending set is bounded (MaxPending). A failure that would
//     overflow it fences the whole namespace instead: its pending keys are
//     dropped, all its reads bypass the cache, and the loop deletes every key
//     of the namespace with SCAN + UNLINK once Redis answers. A scan started
//     after the failures removes every lease or entry that could be stale.
//     The fence lifts only if no failure in that namespace happened after
//     the flush started.
//
// Counters for all of this are in Client.Stats.
//
// # Limits of the guarantee
//
// The pending set and fences live in the process. When a write's
// invalidation fails - one extproc replica cut off from Redis while others
// reach it, or Redis coming back and serving other replicas before this one
// has retried its DELs - other replicas may serve the old entry until the
// retry lands or the entry's TTL runs out. Only a write that blocked until
// Redis answered, or failed, could close that window, and the design rule is
// that the cache never fails a request. Likewise a Redis that restarts
// from a snapshot, or fails over to a replica that missed a DEL, may
// resurrect entries for up to their TTL. Run the cache Redis without
// persistence and keep TTLs short where that matters. A namespace whose
// cache is switched off should keep an invalidate-only store (TTL 0) so that
// switching it back on within a TTL cannot serve entries that missed
// invalidations.
//
// # Client library
//
// The package uses github.com/redis/go-redis/v9 rather than rueidis.
// rueidis's headline speed comes from client-side caching, which is exactly
// what this cache must not have: a second cache whose invalidations arrive
// asynchronously over RESP3 push messages, so a replica could serve a value
// its own invalidation has not reached yet - the stale read this package
// exists to rule out (go-redis has the feature too; it stays off unless
// configured). Without it the two are close, and go-redis is the more widely
// used client, honours per-call context deadlines (ContextTimeoutEnabled, set
// by RedisOptions), which is what bounds a slow Redis to Timeout, and serves
// standalone, Sentinel and Cluster behind one UniversalClient interface.
package cache
