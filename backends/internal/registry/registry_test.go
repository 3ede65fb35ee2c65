package registry

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[string]("fam")
	r.Register("b", func(_ context.Context, dsn string) (string, error) { return "b:" + dsn, nil })
	r.Register("a", func(_ context.Context, dsn string) (string, error) { return "a:" + dsn, nil })
	if got := r.Drivers(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Drivers() = %v, want [a b]", got)
	}
	if s, err := r.Open(context.Background(), "b", "x"); err != nil || s != "b:x" {
		t.Errorf("Open(b, x) = %q, %v", s, err)
	}
	_, err := r.Open(context.Background(), "c", "")
	if err == nil || err.Error() != `fam: unknown driver "c" (have [a b])` {
		t.Errorf("Open of an unknown driver: %v", err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.HasPrefix(p.(string), "fam: Register called twice") {
			t.Errorf("duplicate Register panicked with %v", p)
		}
	}()
	r.Register("a", nil)
}
