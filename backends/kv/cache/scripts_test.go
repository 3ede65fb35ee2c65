package cache

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A pipeline of EVALSHA on a server that has not seen the script (new
// server, SCRIPT FLUSH) must load it and retry, not fail.
func TestPipelinedScriptLoadsOnNoScript(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	var b [8]byte
	rand.Read(b[:])
	// A script no server has cached: its source differs by a comment.
	s := redis.NewScript("-- " + hex.EncodeToString(b[:]) + "\nreturn ARGV[1]")
	keys := []string{c.o.Prefix + "a", c.o.Prefix + "b"}
	cmds, err := runPipelined(t.Context(), rdb, s, keys, func(i int) []any { return []any{keys[i]} })
	if err != nil {
		t.Fatalf("runPipelined: %v", err)
	}
	for i, cmd := range cmds {
		if got, err := cmd.Text(); err != nil || got != keys[i] {
			t.Errorf("script %d = %q, %v; want %q", i, got, err, keys[i])
		}
	}
}
