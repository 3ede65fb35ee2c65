package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/prism-gw/prism/envoy/certs"
)

// runCerts writes the development certificates: a CA, Envoy's server
// certificate and client certificates with SPIFFE URI SANs. compose.yaml
// mounts the output directory into Envoy at /etc/envoy/certs. With --client
// it issues one more client certificate from the CA already in --out (made
// when missing), e.g. for `prism dev --tls` (--out .prism/certs).
func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "envoy/certs/dev", "output directory")
	td := fs.String("trust-domain", certs.DefaultTrustDomain, "SPIFFE trust domain")
	hosts := fs.String("hosts", "localhost,127.0.0.1,envoy", "comma-separated DNS names and IPs of Envoy's server certificate")
	clients := fs.String("clients", "dev-client", "comma-separated client identities (spiffe://<trust domain>/<name>)")
	client := fs.String("client", "", "issue only this client certificate (NAME.pem, NAME-key.pem) from the CA in --out, keeping the CA")
	san := fs.String("san", "", "with --client: its URI SAN, a spiffe:// ID (default spiffe://<trust domain>/NAME)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *san != "" && *client == "" {
		return fmt.Errorf("certs: --san needs --client NAME")
	}
	if *client != "" {
		ca, err := certs.EnsureDevSet(*out, *td, splitList(*hosts))
		if err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		cert, key, err := certs.WriteClient(ca, *out, *client, *san)
		if err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		id := *san
		if id == "" {
			id = ca.ID(*client)
		}
		fmt.Fprintf(stdout, "client %s: %s, %s (CA %s)\n", id, cert, key, filepath.Join(*out, certs.CAFile))
		return nil
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
