package main

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertsWritesClientWithSPIFFEID(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := runCerts([]string{"-out", dir, "-clients", "orders, support-tool"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "orders.pem"))
	if err != nil {
		t.Fatalf("no client certificate for orders: %v (output %q)", err, out.String())
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("orders.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || !strings.HasPrefix(cert.URIs[0].String(), "spiffe://") || !strings.HasSuffix(cert.URIs[0].String(), "/orders") {
		t.Fatalf("orders certificate URIs = %v, want one spiffe://…/orders", cert.URIs)
	}
}
