package neptune

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Credentials are AWS credentials for SigV4 signing.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials (STS, IRSA, instance
	// roles) and sent as X-Amz-Security-Token.
	SessionToken string
}

// CredentialsProvider returns the credentials to sign a request with. It is
// called for every request, so a provider that refreshes temporary
// credentials (for example one built on the AWS SDK's default chain by the
// binary) takes effect without reopening the store.
type CredentialsProvider interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// EnvCredentials reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN at every call.
type EnvCredentials struct{}

// Credentials implements CredentialsProvider.
func (EnvCredentials) Credentials(context.Context) (Credentials, error) {
	c := Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set for SigV4 signing")
	}
	return c, nil
}

// StaticCredentials always returns the same credentials.
type StaticCredentials Credentials

// Credentials implements CredentialsProvider.
func (c StaticCredentials) Credentials(context.Context) (Credentials, error) {
	return Credentials(c), nil
}

// signer signs requests with AWS Signature Version 4 in the Authorization
// header. It is written here rather than taken from aws-sdk-go-v2 because
// signing is all the driver needs: ~150 lines checked against AWS's
// published test vectors, against a dependency tree the size of the SDK's
// for one function. Credentials are pluggable, so the binary can still use
// the SDK's credential chain (IRSA, instance roles) through
// CredentialsProvider.
type signer struct {
	region, service string
	creds           CredentialsProvider
	now             func() time.Time
}

// unsignedHeaders are never signed: proxies and the transport may change
// them.
var unsignedHeaders = map[string]bool{"authorization": true, "user-agent": true, "x-amzn-trace-id": true, "expect": true}

// sign adds X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
// Authorization to req, whose body is body. Every header already set on
// req, and Host, is signed.
func (s *signer) sign(ctx context.Context, req *http.Request, body []byte) error {
	c, err := s.creds.Credentials(ctx)
	if err != nil {
		return fmt.Errorf("sigv4 credentials: %w", err)
	}
	t := s.now().UTC()
	amzDate, day := t.Format("20060102T150405Z"), t.Format("20060102")
	req.Header.Set("X-Amz-Date", amzDate)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	headers, signed := canonicalHeaders(req)
	payload := sha256.Sum256(body)
	creq := strings.Join([]string{
		req.Method,
		canonicalPath(req.URL),
		canonicalQuery(req.URL),
		headers,
		signed,
		hex.EncodeToString(payload[:]),
	}, "\n")
	scope := day + "/" + s.region + "/" + s.service + "/aws4_request"
	creqHash := sha256.Sum256([]byte(creq))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creqHash[:])
	key := hmacSHA256([]byte("AWS4"+c.SecretAccessKey), day)
	for _, part := range []string{s.region, s.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.AccessKeyID+"/"+scope+
		", SignedHeaders="+signed+", Signature="+sig)
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalHeaders returns the canonical header block (each "name:value\n",
// sorted by name) and the signed header list.
func canonicalHeaders(req *http.Request) (block, signed string) {
	values := map[string][]string{"host": {hostOf(req)}}
	for name, vs := range req.Header {
		if n := strings.ToLower(name); !unsignedHeaders[n] {
			values[n] = append(values[n], vs...)
		}
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		trimmed := make([]string, len(values[n]))
		for i, v := range values[n] {
			trimmed[i] = strings.Join(strings.Fields(v), " ") // trim, collapse spaces
		}
		b.WriteString(n + ":" + strings.Join(trimmed, ",") + "\n")
	}
	return b.String(), strings.Join(names, ";")
}

// hostOf is the Host header Go will send.
func hostOf(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// canonicalPath URI-encodes each segment of the path once, as the test
// suite's vectors do; "/" when empty.
func canonicalPath(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	segments := strings.Split(u.Path, "/")
	for i, s := range segments {
		segments[i] = uriEncode(s)
	}
	return strings.Join(segments, "/")
}

// canonicalQuery sorts the query by encoded name, then value, and
// URI-encodes both.
func canonicalQuery(u *url.URL) string {
	var pairs [][2]string
	for name, vs := range u.Query() {
		for _, v := range vs {
			pairs = append(pairs, [2]string{uriEncode(name), uriEncode(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, "&")
}

// uriEncode percent-encodes every byte but the RFC 3986 unreserved
// characters, in upper-case hex, as SigV4 requires.
func uriEncode(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}
