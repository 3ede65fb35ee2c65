package cache

import (
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

func TestConformanceOverSQLite(t *testing.T) {
	c, _ := newTestClient(t, redisAddr(), ClientOptions{})
	// kvtest's subtests are parallel and end after this function returns;
	// cleanups run after them.
	t.Cleanup(func() {
		st := c.Stats()
		if st.Hits == 0 || st.Fills == 0 || st.Invalidations == 0 {
			t.Errorf("the suite did not exercise the cache: %+v", st)
		}
		t.Logf("stats: %+v", st)
	})
	kvtest.Run(t, func(t *testing.T) kv.Store {
		// 2 MiB so kvtest's 1 MiB value goes through the cache too.
		return New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute, MaxValueBytes: 2 << 20})
	})
}
