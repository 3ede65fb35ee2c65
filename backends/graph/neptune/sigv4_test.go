package neptune

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignerMatchesAWSTestSuite signs requests of AWS's SigV4 test suite
// (aws-sig-v4-test-suite: region us-east-1, service "service", credentials
// AKIDEXAMPLE, 2015-08-30T12:36:00Z) and compares with its published
// Authorization headers.
func TestSignerMatchesAWSTestSuite(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	const token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
	const prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
	for _, tc := range []struct {
		name, method, url, body, contentType, token string
		want                                        string
	}{
		{name: "get-vanilla", method: "GET", url: "https://example.amazonaws.com/",
			want: "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{name: "get-vanilla-query-order-key-case", method: "GET", url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
			want: "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{name: "post-vanilla", method: "POST", url: "https://example.amazonaws.com/",
			want: "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{name: "post-x-www-form-urlencoded", method: "POST", url: "https://example.amazonaws.com/",
			body: "Param1=value1", contentType: "application/x-www-form-urlencoded",
			want: "SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{name: "post-sts-header-before", method: "POST", url: "https://example.amazonaws.com/", token: token,
			want: "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
	} {
		req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		s := &signer{region: "us-east-1", service: "service",
			creds: StaticCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret, SessionToken: tc.token},
			now:   func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) }}
		if err := s.sign(context.Background(), req, []byte(tc.body)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := req.Header.Get("Authorization"); got != prefix+tc.want {
			t.Errorf("%s: Authorization =\n  %s\nwant\n  %s", tc.name, got, prefix+tc.want)
		}
		if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
			t.Errorf("%s: X-Amz-Date = %s", tc.name, got)
		}
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"AZaz09-_.~": "AZaz09-_.~",
		"a b+c/d":    "a%20b%2Bc%2Fd",
		"é":          "%C3%A9",
		"*":          "%2A",
	} {
		if got := uriEncode(in); got != want {
			t.Errorf("uriEncode(%q) = %q, want %q", in, got, want)
		}
	}
}
