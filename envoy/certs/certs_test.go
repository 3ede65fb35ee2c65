package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMutualTLSCarriesTheSPIFFEID makes a real mutual TLS handshake with
// certificates from WriteDevSet, as Envoy's listener does: the server
// requires a client certificate from the CA and sees the client's URI SAN.
func TestMutualTLSCarriesTheSPIFFEID(t *testing.T) {
	dir := t.TempDir()
	ca, err := WriteDevSet(dir, "", []string{"localhost", "127.0.0.1"}, []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "orders.pem"), filepath.Join(dir, "orders-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			peer <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- "handshake: " + err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].URIs[0].String()
		io.Copy(io.Discard, c)
	}()
	conn, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	conn.Close()
	select {
	case got := <-peer:
		if got != "spiffe://prism.local/orders" || ca.ID("orders") != got {
			t.Fatalf("server saw client identity %q, want spiffe://prism.local/orders", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no handshake")
	}
}

func TestIssuedCertificatesVerify(t *testing.T) {
	ca, err := NewCA("example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tests := []struct {
		name  string
		req   Request
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"client as client", Request{Name: "svc/a", Usage: ClientAuth}, x509.ExtKeyUsageClientAuth, true},
		{"client as server", Request{Name: "svc/a", Usage: ClientAuth}, x509.ExtKeyUsageServerAuth, false},
		{"server as server", Request{Name: "envoy", DNSNames: []string{"envoy"}, Usage: ServerAuth}, x509.ExtKeyUsageServerAuth, true},
		{"both", Request{Name: "extproc", Usage: ServerAuth | ClientAuth}, x509.ExtKeyUsageClientAuth, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ca.Issue(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			if (err == nil) != tt.ok {
				t.Fatalf("Verify for %v: %v, want ok=%v", tt.usage, err, tt.ok)
			}
			if got := c.Cert.URIs[0].String(); got != "spiffe://example.org/"+tt.req.Name {
				t.Fatalf("URI SAN %s", got)
			}
		})
	}
	if _, err := ca.Issue(Request{Name: "x"}); err == nil {
		t.Fatal("Issue without a usage succeeded")
	}
}

func TestLoadCAIssuesForTheSameTrust(t *testing.T) {
	dir := t.TempDir()
	ca, err := WriteDevSet(dir, "prism.test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode: %v %v, want 0600", fi.Mode(), err)
	}
	loaded, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := loaded.Issue(Request{Name: "late", Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a certificate from the reloaded CA does not verify: %v", err)
	}
	if loaded.TrustDomain() != "prism.test" {
		t.Fatalf("trust domain %q", loaded.TrustDomain())
	}
}
