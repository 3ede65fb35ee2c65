package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
)

// DirectTarget is the direct-backend baseline: the same operation on the
// backend's store, with no gRPC, decoding, policy or PII in between. The
// store is the driver Prism uses (SQLite through database/sql, Postgres
// through pgx...), opened on its own by the bench.
type DirectTarget struct {
	ns string
	// writeNS is where writes go (ns unless set).
	writeNS string
	kv      kv.Store
	ts      ts.Store
	graph   graph.Store
	c       io.Closer
}

// OpenDirect opens the store of an abstraction with a registered driver.
func OpenDirect(ctx context.Context, abstraction, driver, dsn, namespace string) (*DirectTarget, error) {
	d := &DirectTarget{ns: namespace, writeNS: namespace}
	var err error
	switch abstraction {
	case "kv":
		d.kv, err = kv.Open(ctx, driver, dsn)
		d.c = d.kv
	case "ts":
		d.ts, err = ts.Open(ctx, driver, dsn)
		d.c = d.ts
	case "graph":
		d.graph, err = graph.Open(ctx, driver, dsn)
		d.c = d.graph
	default:
		return nil, fmt.Errorf("unknown abstraction %q", abstraction)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s %s store directly: %w", driver, abstraction, err)
	}
	return d, nil
}

// Do runs op on the store.
func (d *DirectTarget) Do(ctx context.Context, op *Op) error {
	switch op.Kind {
	case KVGet:
		_, err := d.kv.Get(ctx, d.ns, op.Key)
		return err
	case KVPut:
		_, err := d.kv.Put(ctx, d.writeNS, kv.PutOp{Key: op.Key, Value: op.Value, ContentType: op.ContentType})
		return err
	case KVScan:
		_, err := d.kv.Scan(ctx, d.ns, kv.ScanQuery{Start: op.Key, Limit: max(op.Limit, 1), MaxBytes: kv.MaxPageValues})
		return err
	case TSAppend:
		_, _, err := d.ts.Append(ctx, d.writeNS, []ts.Event{{Series: op.Key, Time: time.Now(), Data: op.Value}})
		return err
	case TSQuery:
		_, err := d.ts.Query(ctx, d.ns, ts.QueryArgs{Series: op.Key, Limit: max(op.Limit, 1)})
		return err
	case GraphTraverse:
		_, err := d.graph.Traverse(ctx, d.ns, graph.TraverseArgs{Start: op.Key, Direction: graph.Out, MaxDepth: 2, Limit: 50})
		return err
	}
	return errors.New("operation not supported by the direct baseline")
}

// Close closes the store.
func (d *DirectTarget) Close() error { return d.c.Close() }
