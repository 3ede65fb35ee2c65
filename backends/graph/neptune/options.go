package neptune

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// Region, when set, turns on SigV4 signing for service "neptune-db" in
	// that region (clusters with IAM database authentication). Empty: no
	// signing.
	Region string
	// Credentials sign requests when Region is set. Default EnvCredentials.
	Credentials CredentialsProvider
	// HTTPClient sends the requests. Default: a client that speaks
	// HTTP/1.1 only, as Neptune requires.
	HTTPClient *http.Client
	// RequestTimeout bounds each HTTP request (a traversal makes several).
	// Default 30s.
	RequestTimeout time.Duration
	// Retries is how often a request that failed with an error Neptune
	// calls retryable (a concurrent modification, throttling) is retried,
	// with a short backoff, before the call fails with
	// graph.ErrUnavailable. Every query the driver sends is idempotent.
	// Default 2; negative: none.
	Retries int
	// LoadChunk is the number of nodes or edges a Load sends per request.
	// Default 500.
	LoadChunk int
	// MaxResponseBytes bounds a response body. Default 256 MiB.
	MaxResponseBytes int64
}

func (o Options) withDefaults() Options {
	if o.Region != "" && o.Credentials == nil {
		o.Credentials = EnvCredentials{}
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Neptune does not support HTTP/2 on its REST endpoints.
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		t.Protocols = &protocols
		t.MaxIdleConnsPerHost = 64
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.LoadChunk <= 0 {
		o.LoadChunk = 500
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 256 << 20
	}
	return o
}

// ParseDSN splits a DSN of the form
// "https://cluster-endpoint:8182[?region=us-east-1&timeout=30s&retries=2&load_chunk=500]"
// into the endpoint URL and options. A region turns SigV4 signing on, with
// credentials from the environment. Unknown parameters are rejected.
func ParseDSN(dsn string) (*url.URL, Options, error) {
	var o Options
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, o, fmt.Errorf("neptune graph: DSN: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, o, fmt.Errorf("neptune graph: DSN %q: want https://host:port", dsn)
	}
	for name, values := range u.Query() {
		v := values[len(values)-1]
		switch name {
		case "region":
			o.Region = v
		case "timeout":
			o.RequestTimeout, err = time.ParseDuration(v)
		case "retries":
			o.Retries, err = strconv.Atoi(v)
			if err == nil && o.Retries == 0 {
				o.Retries = -1 // explicit zero: no retries
			}
		case "load_chunk":
			o.LoadChunk, err = strconv.Atoi(v)
		default:
			return nil, o, fmt.Errorf("neptune graph: unknown DSN parameter %q (have region, timeout, retries, load_chunk)", name)
		}
		if err != nil {
			return nil, o, fmt.Errorf("neptune graph: DSN parameter %s: %w", name, err)
		}
	}
	u.RawQuery = ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, o, nil
}
