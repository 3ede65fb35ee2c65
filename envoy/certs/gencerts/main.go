// Command gencerts writes Prism's development certificates: a CA, Envoy's
// server certificate and client certificates with SPIFFE URI SANs.
//
//	go run ./envoy/certs/gencerts -out envoy/certs/dev -clients orders,support-tool
//
// compose.yaml mounts the output directory into Envoy at /etc/envoy/certs.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/prism-gw/prism/envoy/certs"
)

func main() {
	out := flag.String("out", "envoy/certs/dev", "output directory")
	td := flag.String("trust-domain", certs.DefaultTrustDomain, "SPIFFE trust domain")
	hosts := flag.String("hosts", "localhost,127.0.0.1,envoy", "comma-separated DNS names and IPs of Envoy's server certificate")
	clients := flag.String("clients", "dev-client", "comma-separated client identities (spiffe://<trust domain>/<name>)")
	flag.Parse()
	ca, err := certs.WriteDevSet(*out, *td, split(*hosts), split(*clients))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote CA %s and certificates to %s\n", ca.Cert.Subject.CommonName, *out)
	for _, c := range split(*clients) {
		fmt.Printf("  client %s: %s.pem, %s-key.pem\n", ca.ID(c), c, c)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
