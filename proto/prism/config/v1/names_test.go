package configv1

import (
	"strings"
	"testing"
)

func TestValidateNameAcceptsDNSLabels(t *testing.T) {
	for _, ok := range []string{"a", "default", "user-profiles", "pg-main", "a1", strings.Repeat("x", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", "a b", "ü", strings.Repeat("x", 64)} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted a name that is not a DNS label", bad)
		}
	}
}
