package pii

import (
	"encoding/json"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hidden is the mask of a value that has nothing safe to show.
const hidden = "***"

// MaskValue returns the masked form of a field's plaintext JSON value, as JSON:
//
//	email        john.doe@example.com   → "j***@example.com"
//	phone        +1 (555) 123-4567      → "***4567"        (last 4 digits)
//	name         John Ronald Tolkien    → "J. R. T."       (initials)
//	ssn          123-45-6789            → "***-**-6789"
//	credit_card  4111 1111 1111 1234    → "**** **** **** 1234"
//	ip_address   192.168.1.77           → "192.168.1.0"    (/24; IPv6 /48)
//	address      "1600 Amphitheatre Pk" → "1***"           (first character)
//	address      {"street":…,"city":"Springfield",…} → {"city":"Springfield"}
//
// A value with too little to mask safely (an email without @, a phone of
// four digits or fewer), a non-string value of a string class, and any value
// of an unknown class become "***". Numbers are masked as their digits.
func MaskValue(class Class, raw []byte) []byte {
	if class == Address && len(raw) > 0 && raw[0] == '{' {
		return maskAddressObject(raw)
	}
	s, ok := scalarText(raw)
	if !ok {
		return quote(hidden)
	}
	switch class {
	case Email:
		return quote(maskEmail(s))
	case Phone:
		return quote(maskLastDigits(s, 5, hidden))
	case Name:
		return quote(initials(s))
	case SSN:
		return quote(maskLastDigits(s, 9, "***-**-"))
	case CreditCard:
		return quote(maskLastDigits(s, 12, "**** **** **** "))
	case IPAddress:
		return quote(maskIP(s))
	case Address:
		r, size := utf8.DecodeRuneInString(s)
		if size == 0 || unicode.IsSpace(r) {
			return quote(hidden)
		}
		return quote(string(r) + hidden)
	}
	return quote(hidden)
}

// scalarText returns the text of a JSON string or number.
func scalarText(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		return string(raw), true
	}
	return "", false
}

// maskEmail keeps the first character of the local part and the domain.
func maskEmail(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 || at == len(s)-1 {
		return hidden
	}
	r, size := utf8.DecodeRuneInString(s)
	if at == 0 || size == 0 {
		return hidden + s[at:]
	}
	return string(r) + hidden + s[at:]
}

// maskLastDigits shows the last four digits of s after prefix, when s has at
// least need digits; fewer would show too much of a short number.
func maskLastDigits(s string, need int, prefix string) string {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) < need {
		if prefix == hidden {
			return hidden
		}
		return prefix + "****"
	}
	return prefix + string(digits[len(digits)-4:])
}

// initials turns "John Ronald Tolkien" into "J. R. T.".
func initials(s string) string {
	var b strings.Builder
	for _, word := range strings.Fields(s) {
		r, _ := utf8.DecodeRuneInString(word)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return hidden
	}
	return b.String()
}

// maskIP zeroes the host part: IPv4 to its /24, IPv6 to its /48.
func maskIP(s string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return hidden
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.WithZone("").Prefix(bits)
	if err != nil {
		return hidden
	}
	return p.Addr().String()
}

// maskAddressObject keeps only the city of an address object.
func maskAddressObject(raw []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return quote(hidden)
	}
	city, ok := obj["city"]
	if !ok {
		return []byte("{}")
	}
	out, err := json.Marshal(map[string]json.RawMessage{"city": city})
	if err != nil {
		return quote(hidden)
	}
	return out
}

// quote returns s as a JSON string.
func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
