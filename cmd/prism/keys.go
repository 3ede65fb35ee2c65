package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prism-gw/prism/envoy/certs"
	"github.com/prism-gw/prism/extproc/pii"
)

const keysUsage = `usage:
  prism keys rotate NS [--kek-file F --keys-file F]     add a data key; new writes of NS use it
  prism keys list NS [--kek-file F --keys-file F]       the data keys of NS, oldest first
  prism keys reencrypt NS [--url U --cert F --key F --ca F]
                                                       rewrite NS's KeyValue values through the data API,
                                                       so that they are sealed with the current key
`

// runKeys runs the PII data key commands. Rotation works on the key store
// file directly; a running extproc picks the new key up within its reload
// interval (and finds it at once for reads of values sealed with it).
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		fmt.Fprint(stderr, keysUsage)
		return flag.ErrHelp
	}
	cmd, ns, rest := args[0], args[1], args[2:]
	switch cmd {
	case "rotate", "list":
		return runKeysStore(ctx, cmd, ns, rest, stdout, stderr)
	case "reencrypt":
		return runReencrypt(ctx, ns, rest, stdout, stderr)
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown command %q", cmd)
}

// runKeysStore is `prism keys rotate|list NS`.
func runKeysStore(ctx context.Context, cmd, ns string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	kekFile := fs.String("kek-file", ".prism/kek", "key-encryption key wrapping the data keys (as given to prism dev / extproc)")
	keysFile := fs.String("keys-file", ".prism/keys.json", "keyring file holding the wrapped data keys (as given to prism dev / extproc)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	store := pii.NewFileKeyStore(*keysFile)
	if cmd == "list" {
		keys, err := store.Keys(ctx, ns)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("keys list: namespace %s has no data key in %s", ns, *keysFile)
		}
		for i, k := range keys {
			mark := ""
			if i == len(keys)-1 {
				mark = "  (current)"
			}
			fmt.Fprintf(stdout, "%s  created %s  kek %s%s\n", k.ID, k.Created.Format(time.RFC3339), k.KEK, mark)
		}
		return nil
	}
	kek, err := pii.LoadKEKFile(*kekFile)
	if err != nil {
		return fmt.Errorf("keys rotate: --kek-file: %w", err)
	}
	keyring := pii.NewKeyring(store, kek)
	before, err := store.Keys(ctx, ns)
	if err != nil {
		return err
	}
	kid, err := keyring.Rotate(ctx, ns)
	if err != nil {
		return fmt.Errorf("keys rotate %s: %w", ns, err)
	}
	fmt.Fprintf(stdout, "namespace %s: new data key %s (%d older keys stay readable)\n", ns, kid, len(before))
	fmt.Fprintf(stdout, "a running prism dev / extproc seals new values with it within %s; `prism keys reencrypt %s` moves old values to it\n", keyReloadInterval, ns)
	return nil
}

// keyReloadInterval is how often dev and extproc look for rotated keys.
const keyReloadInterval = 2 * time.Second

// runReencrypt is `prism keys reencrypt NS`: it pages through the
// namespace with the data API and writes each value back unchanged with
// If-Match on the version it read, so extproc seals it with the current
// key. It goes through the data API (not the backend) so that caches,
// migration shadow writes, policy and audit all see the rewrite. It needs
// an owner identity (a client certificate with --tls). A value written by
// someone else meanwhile is skipped: that write used the current key.
//
// It covers KeyValue namespaces (TimeSeries events are immutable). The
// data API does not show a value's TTL, so a rewritten value loses its
// expiry: in namespaces that use TTLs, let old values expire instead.
func runReencrypt(ctx context.Context, ns string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism keys reencrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "https://127.0.0.1:8080", "the data API (the dev edge or Envoy)")
	certFile := fs.String("cert", "", "client certificate of an owner of the namespace (PEM)")
	keyFile := fs.String("key", "", "its key (PEM)")
	caFile := fs.String("ca", filepath.Join(".prism/certs", certs.CAFile), "CA of the server certificate (https only)")
	prefix := fs.String("prefix", "", "only keys with this prefix")
	page := fs.Int("page", 100, "keys per scan page (1-1000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *page < 1 || *page > 1000 {
		return fmt.Errorf("keys reencrypt: --page must be 1 to 1000")
	}
	client, err := dataAPIClient(*base, *certFile, *keyFile, *caFile)
	if err != nil {
		return fmt.Errorf("keys reencrypt: %w", err)
	}
	job := reencryptJob{client: client, base: strings.TrimRight(*base, "/"), ns: ns, prefix: *prefix, page: *page, out: stdout}
	st, err := job.run(ctx)
	fmt.Fprintf(stdout, "namespace %s: %d values read, %d rewritten with the current key, %d changed meanwhile (skipped)\n", ns, st.read, st.rewritten, st.skipped)
	if err != nil {
		return fmt.Errorf("keys reencrypt %s: %w", ns, err)
	}
	return nil
}

// dataAPIClient is an HTTP client for the data API, with a client
// certificate when one is given.
func dataAPIClient(base, certFile, keyFile, caFile string) (*http.Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want http(s)://host:port", base)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if u.Scheme == "http" {
		if certFile != "" {
			return nil, errors.New("--cert needs an https --url")
		}
		return client, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no certificate", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	client.Transport = &http.Transport{TLSClientConfig: cfg}
	return client, nil
}

// reencryptJob rewrites a namespace's values through the data API.
type reencryptJob struct {
	client *http.Client
	base   string
	ns     string
	prefix string
	page   int
	out    io.Writer
}

type reencryptStats struct{ read, rewritten, skipped int }

// scanItem is an item of a scan answer.
type scanItem struct {
	Key         string          `json:"key"`
	Version     string          `json:"version"`
	ContentType string          `json:"content_type"`
	Value       json.RawMessage `json:"value"`
	ValueBase64 []byte          `json:"value_base64"`
}

func (j *reencryptJob) run(ctx context.Context) (reencryptStats, error) {
	var st reencryptStats
	cursor := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(j.page)}}
		if j.prefix != "" {
			q.Set("prefix", j.prefix)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var res struct {
			Items      []scanItem `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		if err := j.do(ctx, "GET", "/v1/kv/"+url.PathEscape(j.ns)+"?"+q.Encode(), nil, nil, &res); err != nil {
			return st, fmt.Errorf("scan: %w", err)
		}
		for _, it := range res.Items {
			st.read++
			body := []byte(it.Value)
			if it.Value == nil {
				body = it.ValueBase64
			}
			hdr := http.Header{"If-Match": {`"` + it.Version + `"`}}
			if it.ContentType != "" {
				hdr.Set("Content-Type", it.ContentType)
			}
			err := j.do(ctx, "PUT", "/v1/kv/"+url.PathEscape(j.ns)+"/"+escapeKey(it.Key), body, hdr, nil)
			var se *statusError
			switch {
			case err == nil:
				st.rewritten++
			case errors.As(err, &se) && se.status == http.StatusPreconditionFailed:
				st.skipped++
			default:
				return st, fmt.Errorf("rewrite %q: %w", it.Key, err)
			}
		}
		fmt.Fprintf(j.out, "  %d read, %d rewritten, %d skipped\n", st.read, st.rewritten, st.skipped)
		if res.NextCursor == "" {
			return st, nil
		}
		cursor = res.NextCursor
	}
}

// escapeKey percent-encodes a key for the path, keeping its slashes.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// statusError is a data API error answer.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// do sends one data API request and decodes a 2xx JSON answer into out.
func (j *reencryptJob) do(ctx context.Context, method, path string, body []byte, hdr http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, j.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &statusError{status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}
