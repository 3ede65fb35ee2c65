package extproc

import (
	"strings"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Abstractions as they appear in data API paths.
const (
	pathKV    = "kv"
	pathTS    = "ts"
	pathGraph = "graph"
)

// route is a data API path split into its parts: /v1/{abstraction}/{ns}/{rest}.
type route struct {
	abstraction string
	namespace   string
	// rest is the still percent-encoded remainder after the namespace, without
	// the leading slash; hasRest tells "/v1/kv/ns" from "/v1/kv/ns/".
	rest    string
	hasRest bool
}

// isDataAPI reports whether a path belongs to the data API; other paths pass
// through extproc untouched.
func isDataAPI(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/")
}

// parseRoute splits a data API path. The namespace segment must be a valid
// namespace name; it is never percent-decoded so that one path has one meaning.
func parseRoute(path string) (route, *apiError) {
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return route{}, notFound("no data API at %q", path)
	}
	abstraction, rest, _ := strings.Cut(rest, "/")
	switch abstraction {
	case pathKV, pathTS, pathGraph:
	default:
		return route{}, notFound("unknown abstraction %q: want kv, ts or graph", abstraction)
	}
	ns, rest, hasRest := strings.Cut(rest, "/")
	if ns == "" {
		return route{}, notFound("missing namespace in path")
	}
	if err := configv1.ValidateName(ns); err != nil {
		return route{}, notFound("unknown namespace: %v", err)
	}
	return route{abstraction: abstraction, namespace: ns, rest: rest, hasRest: hasRest}, nil
}
