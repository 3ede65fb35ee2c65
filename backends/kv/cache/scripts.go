package cache

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// lookupScript returns the entry when the key holds one (a hit, as a bulk
// string starting with 'D'); otherwise, when the key is absent, it stores
// the caller's lease (ARGV[1], PX ARGV[2]) and returns 1: the caller may
// fill. It returns 0 when another reader's lease is there.
var lookupScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if string.byte(v, 1) == 68 then return v end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// fillScript stores the entry ARGV[2] with PX ARGV[3] only while the key
// still holds the caller's lease ARGV[1]; it returns 1 if it did. A DEL since
// the lease was granted (an invalidation) makes it refuse.
var fillScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// isNoScript reports an EVALSHA of a script Redis does not have cached (new
// server, SCRIPT FLUSH).
func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// runPipelined runs one script per key in a single round trip with EVALSHA,
// loading the script and retrying once if Redis does not have it.
func runPipelined(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args func(i int) []any) ([]*redis.Cmd, error) {
	run := func() ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(keys))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = s.EvalSha(ctx, p, []string{k}, args(i)...)
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run()
	if err == nil {
		return cmds, nil
	}
	for _, c := range cmds {
		if isNoScript(c.Err()) {
			if err := s.Load(ctx, rdb).Err(); err != nil {
				return nil, err
			}
			return run()
		}
	}
	return cmds, err
}
