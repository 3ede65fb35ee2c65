package devedge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prism-gw/prism/envoy/certs"
)

// TLSConfig is the dev edge's mTLS listener config, as Prism's Envoy
// listener has it: the server certificate and the client CA are those of a
// certs dev set in dir. A client certificate that is presented must chain
// to the CA, or the handshake fails. requireClientCert also refuses clients
// without one at the handshake; without it such a client gets through with
// no identity, and a namespace that requires one answers 401, which is what
// Envoy does with require_client_certificate false.
func TLSConfig(dir string, requireClientCert bool) (*tls.Config, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, certs.CAFile))
	if err != nil {
		return nil, fmt.Errorf("devedge: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("devedge: %s holds no certificate", filepath.Join(dir, certs.CAFile))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.ServerFile), filepath.Join(dir, certs.ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("devedge: server certificate: %w", err)
	}
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   auth,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
