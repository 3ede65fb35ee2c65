package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// TestEnsureDevSetKeepsTheCA: a second start finds the CA of the first, so
// client certificates issued in between stay valid; WriteClient puts the
// requested SPIFFE ID in the certificate and refuses anything else.
func TestEnsureDevSetKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	ca1, err := EnsureDevSet(dir, "", []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	certPath, _, err := WriteClient(ca1, dir, "partner", "spiffe://partner.example/support")
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := EnsureDevSet(dir, "", []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if !ca2.Cert.Equal(ca1.Cert) {
		t.Fatal("EnsureDevSet made a new CA over an existing one")
	}
	client := readCert(t, certPath)
	if len(client.URIs) != 1 || client.URIs[0].String() != "spiffe://partner.example/support" {
		t.Fatalf("client URIs = %v, want the --san given", client.URIs)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca2.Cert)
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not verify against the kept CA: %v", err)
	}
	for _, bad := range []string{"https://x/y", "spiffe://", "spiffe://td/p?q=1", "::"} {
		if _, _, err := WriteClient(ca2, dir, "bad", bad); err == nil {
			t.Errorf("WriteClient with SAN %q succeeded", bad)
		}
	}
	if _, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
