package configv1

import (
	"fmt"
	"strconv"
)

// MaxNameLength bounds namespace and backend names, which appear in paths,
// table names and metric labels.
const MaxNameLength = 63

// ValidateName checks the form of a namespace or backend name: 1–63
// characters of lower-case letters, digits, '-', '_' and '.', starting with a
// letter or digit. Hand-written beside the generated code because every
// reader of these messages needs the same rule.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("name must be 1 to %d characters, got %d", MaxNameLength, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return fmt.Errorf("name %s may only hold a-z, 0-9, '-', '_', '.' and must start with a letter or digit", strconv.QuoteToASCII(name))
		}
	}
	return nil
}
