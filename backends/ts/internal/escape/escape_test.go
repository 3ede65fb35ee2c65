package escape

import (
	"strings"
	"testing"
)

func TestNamesAreSafeAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, s := range []string{"a", "a.b", "a_2Eb", "a/b", "a b", "a*", "a>", "ü", "A", "a-b", "a_b",
		strings.Repeat("x", 300), strings.Repeat("x", 301), strings.Repeat("x", 120), strings.Repeat("x", 121)} {
		n := Name(s)
		if n == "" || len(n) > MaxToken || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Errorf("Name(%q) = %q is not a safe name", s, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("Name(%q) = Name(%q) = %q", s, other, n)
		}
		seen[n] = s
	}
}
