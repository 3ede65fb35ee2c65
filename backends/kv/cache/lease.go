package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// lookupResult is the answer of lookupScript for one key: an entry (a hit),
// a lease the caller now holds, or neither (another reader holds the lease).
type lookupResult struct {
	entry []byte
	lease string
	err   error
}

// parseLookup reads lookupScript's reply; lease is the value the caller
// offered.
func parseLookup(v any, lease string) lookupResult {
	switch v := v.(type) {
	case string:
		return lookupResult{entry: []byte(v)}
	case int64:
		if v == 1 {
			return lookupResult{lease: lease}
		}
		return lookupResult{}
	}
	return lookupResult{err: fmt.Errorf("cache: unexpected lookup reply %T", v)}
}

// lookup looks one key up, taking a lease on a miss. On a Redis failure it
// records the failure and returns the error; the caller reads the backend.
func (c *Client) lookup(ctx context.Context, rkey string) (entry []byte, lease string, err error) {
	offer := c.newLease()
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	v, err := lookupScript.Run(rctx, c.rdb, []string{rkey}, offer, c.o.LeaseTTL.Milliseconds()).Result()
	if err != nil {
		c.failed(ctx, err)
		return nil, "", err
	}
	r := parseLookup(v, offer)
	return r.entry, r.lease, r.err
}

// lookupMany looks keys up in one round trip; lease(j) is the lease offered
// for rkeys[j]. A non-nil error means no result is usable.
func (c *Client) lookupMany(ctx context.Context, rkeys []string, lease func(j int) string) ([]lookupResult, error) {
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	leaseMs := c.o.LeaseTTL.Milliseconds()
	cmds, err := runPipelined(rctx, c.rdb, lookupScript, rkeys, func(j int) []any { return []any{lease(j), leaseMs} })
	if err != nil && (cmds == nil || allFailed(cmds)) {
		c.failed(ctx, err)
		return nil, err
	}
	out := make([]lookupResult, len(rkeys))
	for j, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			out[j] = lookupResult{err: err}
			continue
		}
		out[j] = parseLookup(v, lease(j))
	}
	return out, nil
}

func allFailed(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c.Err() == nil {
			return false
		}
	}
	return true
}

// fill stores entry under lease for px; the script refuses if the lease is
// gone.
func (c *Client) fill(ctx context.Context, rkey, lease string, entry []byte, px time.Duration) {
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	n, err := fillScript.Run(rctx, c.rdb, []string{rkey}, lease, entry, px.Milliseconds()).Int64()
	c.filled(ctx, n, err)
}

// fillReq is one fill of a MultiGet.
type fillReq struct {
	rkey, lease string
	entry       []byte
	px          time.Duration
}

// fillMany runs fills in one round trip.
func (c *Client) fillMany(ctx context.Context, fills []fillReq) {
	if len(fills) == 0 {
		return
	}
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	rkeys := make([]string, len(fills))
	for i, f := range fills {
		rkeys[i] = f.rkey
	}
	cmds, err := runPipelined(rctx, c.rdb, fillScript, rkeys, func(i int) []any {
		return []any{fills[i].lease, fills[i].entry, fills[i].px.Milliseconds()}
	})
	if cmds == nil {
		c.failed(ctx, err)
		return
	}
	for _, cmd := range cmds {
		n, err := cmd.Int64()
		c.filled(ctx, n, err)
	}
}

func (c *Client) filled(ctx context.Context, n int64, err error) {
	switch {
	case err != nil:
		c.failed(ctx, err)
	case n == 1:
		c.st.fills.Add(1)
	default:
		c.st.lostFills.Add(1)
	}
}
