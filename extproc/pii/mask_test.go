package pii

import (
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

func TestMaskValue(t *testing.T) {
	tests := []struct {
		class     Class
		raw, want string
	}{
		{Email, `"john.doe@example.com"`, `"j***@example.com"`},
		{Email, `"Ünal@example.com"`, `"Ü***@example.com"`},
		{Email, `"@example.com"`, `"***@example.com"`},
		{Email, `"no-at-sign"`, `"***"`},
		{Email, `"trailing@"`, `"***"`},
		{Email, `""`, `"***"`},
		{Phone, `"+1 (555) 123-4567"`, `"***4567"`},
		{Phone, `15557654321`, `"***4321"`},
		{Phone, `"4567"`, `"***"`},
		{Phone, `"call me"`, `"***"`},
		{Name, `"John Ronald Tolkien"`, `"J. R. T."`},
		{Name, `"ada"`, `"A."`},
		{Name, `"  "`, `"***"`},
		{SSN, `"123-45-6789"`, `"***-**-6789"`},
		{SSN, `"123456789"`, `"***-**-6789"`},
		{SSN, `"1234"`, `"***-**-****"`},
		{CreditCard, `"4111 1111 1111 1234"`, `"**** **** **** 1234"`},
		{CreditCard, `"4111-1111-1111-1234"`, `"**** **** **** 1234"`},
		{CreditCard, `"1234"`, `"**** **** **** ****"`},
		{IPAddress, `"192.168.1.77"`, `"192.168.1.0"`},
		{IPAddress, `"2001:db8:abcd:12:1:2:3:4"`, `"2001:db8:abcd::"`},
		{IPAddress, `"::ffff:10.1.2.3"`, `"10.1.2.0"`},
		{IPAddress, `"fe80::1%eth0"`, `"fe80::"`},
		{IPAddress, `"not an ip"`, `"***"`},
		{Address, `"1600 Amphitheatre Pkwy"`, `"1***"`},
		{Address, `"Ölweg 3"`, `"Ö***"`},
		{Address, `""`, `"***"`},
		{Address, `{"street": "1600 Amphitheatre Pkwy", "city": "Mountain View", "zip": "94043"}`, `{"city":"Mountain View"}`},
		{Address, `{"street": "x"}`, `{}`},
		{Email, `{"a": 1}`, `"***"`},
		{Name, `true`, `"***"`},
		{Name, `["John"]`, `"***"`},
		{"dna", `"GATTACA"`, `"***"`},
		{Email, `"<b>@example.com"`, `"\u003c***@example.com"`},
	}
	for _, tt := range tests {
		t.Run(string(tt.class)+" "+tt.raw, func(t *testing.T) {
			if got := MaskValue(tt.class, []byte(tt.raw)); string(got) != tt.want {
				t.Errorf("MaskValue(%s, %s) = %s, want %s", tt.class, tt.raw, got, tt.want)
			}
		})
	}
}

func TestClassOfCoversTheEnum(t *testing.T) {
	known := map[Class]bool{Email: true, Name: true, Phone: true, SSN: true, Address: true, IPAddress: true, CreditCard: true}
	for n := range configv1.PiiClass_name {
		c := ClassOf(configv1.PiiClass(n))
		if n == 0 {
			if c != "" {
				t.Errorf("ClassOf(unspecified) = %q, want empty", c)
			}
			continue
		}
		if !known[c] {
			t.Errorf("ClassOf(%v) = %q, which pii does not know", configv1.PiiClass(n), c)
		}
	}
	fields := FieldsOf(&configv1.Schema{Pii: []*configv1.PiiField{{Path: "a.b", Class: configv1.PiiClass_IP_ADDRESS}}})
	if len(fields) != 1 || fields[0] != (Field{Path: "a.b", Class: IPAddress}) {
		t.Errorf("FieldsOf = %+v", fields)
	}
}
