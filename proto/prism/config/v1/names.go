package configv1

import (
	"fmt"
	"strconv"
)

// MaxNameLength bounds namespace and backend names, which appear in paths,
// table names, metric labels and Envoy resource names.
const MaxNameLength = 63

// ValidateName checks that a namespace or backend name is a DNS label: 1–63
// characters of lower-case letters, digits and '-', starting and ending with
// a letter or digit. DNS labels are safe everywhere a name travels (paths,
// Envoy resource names, NATS subjects, Kafka topics, SQL identifiers once
// quoted). Hand-written beside the generated code because every reader of
// these messages needs the same rule.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("name must be 1 to %d characters, got %d", MaxNameLength, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return fmt.Errorf("name %s is not a DNS label: use a-z, 0-9 and '-', starting and ending with a letter or digit", strconv.QuoteToASCII(name))
		}
	}
	return nil
}
