package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of ClientOptions.
const (
	// DefaultPrefix starts every Redis key of the cache.
	DefaultPrefix = "prism:kv:"
	// DefaultTimeout bounds a read's Redis round trip.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultInvalidateTimeout bounds the invalidation a write waits for.
	DefaultInvalidateTimeout = 500 * time.Millisecond
	// DefaultLeaseTTL is how long a fill lease lives.
	DefaultLeaseTTL = 2 * time.Second
	// DefaultProbeInterval paces the background probe and retries.
	DefaultProbeInterval = 100 * time.Millisecond
	// DefaultMaxPending bounds the keys retried one by one.
	DefaultMaxPending = 10000
)

// repairBatch caps the keys one background DEL pipeline or UNLINK carries.
const repairBatch = 500

// ClientOptions configure a Client. The zero value gives working defaults.
type ClientOptions struct {
	// Prefix starts every Redis key the cache uses (DefaultPrefix).
	Prefix string
	// Timeout bounds each Redis round trip of a read, so a slow Redis costs
	// a read at most this much (DefaultTimeout).
	Timeout time.Duration
	// InvalidateTimeout bounds the invalidation a write waits for
	// (DefaultInvalidateTimeout). It is longer than Timeout because a
	// failed invalidation is the one Redis failure that can let another
	// process serve a stale value; a merely slow Redis should not cause one.
	// Once the background probe finds Redis unreachable, writes wait only
	// Timeout.
	InvalidateTimeout time.Duration
	// LeaseTTL is how long a reader that missed may take between its lookup
	// and its fill; a later fill is refused (DefaultLeaseTTL).
	LeaseTTL time.Duration
	// ProbeInterval is how often the background loop pings a failed Redis
	// and retries pending invalidations (DefaultProbeInterval).
	ProbeInterval time.Duration
	// MaxPending bounds the keys whose failed invalidation is retried one by
	// one; beyond it the namespace is flushed instead (DefaultMaxPending).
	MaxPending int
	// Logger receives changes of state (Redis lost and back, namespaces
	// fenced), never one line per request. Default slog.Default().
	Logger *slog.Logger
}

// Client is the cache's handle on one Redis server, shared by the stores of
// every namespace. It owns what must outlive a config change: the
// invalidations that failed and are being retried, the breaker, the
// in-flight reads and the counters. Create one per Redis per process.
type Client struct {
	rdb     redis.UniversalClient
	o       ClientOptions
	log     *slog.Logger
	flights flights

	token  string // unique to this client; leases append a counter
	leases atomic.Uint64

	// down is the breaker: set on a Redis failure, cleared by a good PING.
	down atomic.Bool
	// unreachable is set while the background PING fails.
	unreachable atomic.Bool
	// dirty is len(pending)+len(fences), so reads skip the lock when zero.
	dirty atomic.Int64

	mu      sync.Mutex
	seq     uint64                // numbers recorded failures
	pending map[string]pendingKey // by Redis key
	fences  map[string]uint64     // namespace scope -> seq of its latest failure

	st    counters
	hooks hooks

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// pendingKey is a key whose invalidation failed after failure number seq.
type pendingKey struct {
	scope string
	seq   uint64
}

// hooks let tests widen race windows; nil in production.
type hooks struct {
	afterLease func(rkey string) // lease granted, before the backend read
	beforeFill func(rkey string) // backend read done, before the fill
}

// RedisOptions returns go-redis options suited to the cache: context
// deadlines bound every call (ContextTimeoutEnabled), no retries, short dial
// and pool waits, and no extra handshake commands. Set credentials or TLS on
// the result before redis.NewClient.
func RedisOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		DialerRetries:         1,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           time.Second,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// NewClient starts a Client on rdb. The caller keeps ownership of rdb and
// closes it after Client.Close. rdb should honour context deadlines
// (RedisOptions does), or a hung Redis costs its read timeout instead of
// Timeout.
func NewClient(rdb redis.UniversalClient, o ClientOptions) *Client {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InvalidateTimeout <= 0 {
		o.InvalidateTimeout = DefaultInvalidateTimeout
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if c, ok := rdb.(*redis.Client); ok && !c.Options().ContextTimeoutEnabled {
		log.Warn("cache: redis client ignores context deadlines; a hung Redis will cost its read timeout, not the cache timeout",
			"read_timeout", c.Options().ReadTimeout, "timeout", o.Timeout)
	}
	var b [8]byte
	rand.Read(b[:])
	c := &Client{
		rdb:     rdb,
		o:       o,
		log:     log,
		token:   string(leaseTag) + hex.EncodeToString(b[:]) + ":",
		pending: map[string]pendingKey{},
		fences:  map[string]uint64{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.loop()
	return c
}

// Close stops the background loop. It does not close the Redis client.
// Invalidations still pending are lost with the process state, as on a
// crash; see the package doc.
func (c *Client) Close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return nil
}

// newLease returns a lease value no other reader, here or in another
// process, ever holds.
func (c *Client) newLease() string {
	return c.token + strconv.FormatUint(c.leases.Add(1), 36)
}

// redisCtx bounds one Redis round trip of a read.
func (c *Client) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.o.Timeout)
}

// invalidateCtx bounds one invalidation round trip.
func (c *Client) invalidateCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.unreachable.Load() {
		return context.WithTimeout(ctx, c.o.Timeout)
	}
	return context.WithTimeout(ctx, c.o.InvalidateTimeout)
}

// failed records a Redis failure and opens the breaker, unless the failure
// is the caller's own deadline or cancellation running out.
func (c *Client) failed(parent context.Context, err error) {
	if parent.Err() != nil {
		return
	}
	c.st.errors.Add(1)
	if c.down.CompareAndSwap(false, true) {
		c.log.Warn("cache: redis failing; reading from backends until it answers", "err", err)
		c.kick()
	}
}

func (c *Client) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// bypass reports whether a read of rkey must skip Redis: the breaker is
// open, the key's invalidation is pending, or its namespace is fenced.
func (c *Client) bypass(scope, rkey string) bool {
	if c.down.Load() {
		return true
	}
	if c.dirty.Load() == 0 {
		return false
	}
	c.mu.Lock()
	_, pending := c.pending[rkey]
	_, fenced := c.fences[scope]
	c.mu.Unlock()
	return pending || fenced
}

// invalidate deletes rkeys after a write to the backend. It never fails:
// keys it cannot delete are recorded as pending before it returns. It tries
// even while the breaker is open, since the breaker may have opened on a
// read that was merely slow.
func (c *Client) invalidate(ctx context.Context, scope string, rkeys []string) {
	c.st.invalidations.Add(uint64(len(rkeys)))
	sent := c.lastFailure()
	rctx, cancel := c.invalidateCtx(context.WithoutCancel(ctx))
	defer cancel()
	if len(rkeys) == 1 {
		if err := c.rdb.Del(rctx, rkeys[0]).Err(); err != nil {
			c.failed(context.Background(), err)
			c.postpone(scope, rkeys)
			return
		}
		c.cleared(rkeys, sent)
		return
	}
	cmds, err := c.rdb.Pipelined(rctx, func(p redis.Pipeliner) error {
		for _, k := range rkeys {
			p.Del(rctx, k)
		}
		return nil
	})
	if err == nil {
		c.cleared(rkeys, sent)
		return
	}
	c.failed(context.Background(), err)
	var ok, bad []string
	for i, k := range rkeys {
		if i < len(cmds) && cmds[i].Err() == nil {
			ok = append(ok, k)
		} else {
			bad = append(bad, k)
		}
	}
	c.postpone(scope, bad)
	c.cleared(ok, sent)
}

// lastFailure returns the number of the latest recorded failure.
func (c *Client) lastFailure() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// postpone records keys whose invalidation failed, or fences their namespace
// when the pending set would overflow.
func (c *Client) postpone(scope string, rkeys []string) {
	c.st.failedInvalidations.Add(uint64(len(rkeys)))
	c.mu.Lock()
	c.seq++
	if _, fenced := c.fences[scope]; fenced {
		c.fences[scope] = c.seq
	} else if len(c.pending)+len(rkeys) > c.o.MaxPending {
		for k, p := range c.pending {
			if p.scope == scope {
				delete(c.pending, k)
			}
		}
		c.fences[scope] = c.seq
		c.log.Warn("cache: too many failed invalidations; bypassing the namespace until it is flushed",
			"scope", scope, "max_pending", c.o.MaxPending)
	} else {
		for _, k := range rkeys {
			c.pending[k] = pendingKey{scope: scope, seq: c.seq}
		}
	}
	c.dirty.Store(int64(len(c.pending) + len(c.fences)))
	c.mu.Unlock()
	c.kick()
}

// cleared drops pending keys whose failures all happened before a DEL that
// was sent after failure number sent and succeeded: that DEL ran after the
// failed writes' commits, which is all the protocol needs.
func (c *Client) cleared(rkeys []string, sent uint64) {
	if c.dirty.Load() == 0 || len(rkeys) == 0 {
		return
	}
	c.mu.Lock()
	for _, k := range rkeys {
		if p, ok := c.pending[k]; ok && p.seq <= sent {
			delete(c.pending, k)
		}
	}
	c.dirty.Store(int64(len(c.pending) + len(c.fences)))
	c.mu.Unlock()
}

// loop probes a failed Redis and retries pending invalidations.
func (c *Client) loop() {
	defer close(c.done)
	t := time.NewTicker(c.o.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.wake:
		}
		c.heal()
	}
}

// heal runs one round of the loop.
func (c *Client) heal() {
	ctx := context.Background()
	if c.down.Load() {
		rctx, cancel := context.WithTimeout(ctx, c.o.InvalidateTimeout)
		err := c.rdb.Ping(rctx).Err()
		cancel()
		c.unreachable.Store(err != nil)
		if err != nil {
			return
		}
		if c.down.CompareAndSwap(true, false) {
			c.log.Info("cache: redis answers again")
		}
	}
	if c.dirty.Load() == 0 {
		return
	}
	if err := c.repair(ctx); err != nil {
		c.failed(ctx, err)
	}
}

// repair retries pending DELs and flushes fenced namespaces.
func (c *Client) repair(ctx context.Context) error {
	c.mu.Lock()
	sent := c.seq
	keys := make([]string, 0, min(len(c.pending), repairBatch))
	for k := range c.pending {
		if len(keys) == repairBatch {
			break
		}
		keys = append(keys, k)
	}
	scopes := make([]string, 0, len(c.fences))
	for s := range c.fences {
		scopes = append(scopes, s)
	}
	c.mu.Unlock()

	if len(keys) > 0 {
		rctx, cancel := c.invalidateCtx(ctx)
		_, err := c.rdb.Pipelined(rctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(rctx, k)
			}
			return nil
		})
		cancel()
		if err != nil {
			return err
		}
		c.cleared(keys, sent)
	}
	for _, s := range scopes {
		if err := c.flush(ctx, s); err != nil {
			return err
		}
		c.mu.Lock()
		if c.fences[s] <= sent {
			delete(c.fences, s)
			c.log.Info("cache: namespace flushed; caching it again", "scope", s)
		}
		c.dirty.Store(int64(len(c.pending) + len(c.fences)))
		c.mu.Unlock()
	}
	return nil
}

// flush deletes every key of a namespace scope, on every master of a
// cluster.
func (c *Client) flush(ctx context.Context, scope string) error {
	match := globEscape(scope) + "*"
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return c.flushNode(ctx, m, match)
		})
	}
	return c.flushNode(ctx, c.rdb, match)
}

func (c *Client) flushNode(ctx context.Context, r redis.Cmdable, match string) error {
	var cursor uint64
	for {
		rctx, cancel := c.invalidateCtx(ctx)
		keys, next, err := r.Scan(rctx, cursor, match, repairBatch).Result()
		if err == nil && len(keys) > 0 {
			// One UNLINK per key: a cluster node refuses multi-key commands
			// across hash slots.
			_, err = r.Pipelined(rctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(rctx, k)
				}
				return nil
			})
		}
		cancel()
		if err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
