package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/prism-gw/prism/envoy/certs"
)

// runCerts writes the development certificates: a CA, Envoy's server
// certificate and client certificates with SPIFFE URI SANs. compose.yaml
// mounts the output directory into Envoy at /etc/envoy/certs.
func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "envoy/certs/dev", "output directory")
	td := fs.String("trust-domain", certs.DefaultTrustDomain, "SPIFFE trust domain")
	hosts := fs.String("hosts", "localhost,127.0.0.1,envoy", "comma-separated DNS names and IPs of Envoy's server certificate")
	clients := fs.String("clients", "dev-client", "comma-separated client identities (spiffe://<trust domain>/<name>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ca, err := certs.WriteDevSet(*out, *td, splitList(*hosts), splitList(*clients))
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	fmt.Fprintf(stdout, "wrote CA %s and certificates to %s\n", ca.Cert.Subject.CommonName, *out)
	for _, c := range splitList(*clients) {
		fmt.Fprintf(stdout, "  client %s: %s.pem, %s-key.pem\n", ca.ID(c), c, c)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
