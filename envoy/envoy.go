// Package envoy holds what Envoy needs besides what `prism xds` pushes: the
// bootstrap (bootstrap.yaml, which points Envoy's ADS at prism xds) and, in
// envoy/certs, the development PKI. Its tests check the bootstrap and
// compose.yaml against the control plane's conventions.
package envoy

import (
	"bytes"
	_ "embed"
)

//go:embed bootstrap.yaml
var bootstrap []byte

// Bootstrap returns the bootstrap YAML.
func Bootstrap() []byte { return bytes.Clone(bootstrap) }
