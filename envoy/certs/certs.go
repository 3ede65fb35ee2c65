// Package certs is Prism's development PKI: a CA that issues certificates
// with SPIFFE-style URI SANs (spiffe://<trust domain>/<name>) for Envoy,
// Prism's services and client applications. Envoy's RBAC matches the client
// URI SAN exactly, and extproc reads it as the caller's identity.
//
// It is for development and tests: keys are ECDSA P-256 kept in files, with
// no revocation. Production should use a real issuer (SPIRE, cert-manager).
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultTrustDomain is the trust domain of Prism's examples.
const DefaultTrustDomain = "prism.local"

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// Issued is a certificate with its key, PEM encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Usage says what a certificate is for.
type Usage int

// Usages; a service that both serves and calls can have both.
const (
	ServerAuth Usage = 1 << iota
	ClientAuth
)

// Request describes a certificate to issue.
type Request struct {
	// Name is the identity's path in the trust domain: "orders" gives
	// spiffe://<trust domain>/orders. Empty gives no URI SAN.
	Name string
	// URI, when set, is the URI SAN instead of Name's SPIFFE ID: a
	// spiffe:// URI, e.g. of a workload in another trust domain.
	URI string
	// DNSNames and IPs are further SANs (a server's host names).
	DNSNames []string
	IPs      []net.IP
	Usage    Usage
	// ValidFor defaults to 90 days.
	ValidFor time.Duration
}

// NewCA makes a self-signed CA for a trust domain, valid for validFor
// (default 1 year).
func NewCA(trustDomain string, validFor time.Duration) (*CA, error) {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	if validFor <= 0 {
		validFor = 365 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	id, err := url.Parse("spiffe://" + trustDomain)
	if err != nil {
		return nil, fmt.Errorf("certs: trust domain %q: %w", trustDomain, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Prism dev"}, CommonName: "Prism dev CA " + trustDomain},
		URIs:                  []*url.URL{id},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	return &CA{Cert: cert, key: key}, nil
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() string {
	if len(ca.Cert.URIs) == 0 {
		return DefaultTrustDomain
	}
	return ca.Cert.URIs[0].Host
}

// ID is the SPIFFE ID of a name in the CA's trust domain.
func (ca *CA) ID(name string) string {
	return "spiffe://" + ca.TrustDomain() + "/" + strings.TrimPrefix(name, "/")
}

// CertPEM is the CA certificate, the trust bundle clients and Envoy load.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA key, for LoadCA.
func (ca *CA) KeyPEM() ([]byte, error) {
	return keyPEM(ca.key)
}

// Issue signs a certificate for r.
func (ca *CA) Issue(r Request) (*Issued, error) {
	if r.Usage == 0 {
		return nil, errors.New("certs: a certificate needs ServerAuth, ClientAuth or both")
	}
	if r.ValidFor <= 0 {
		r.ValidFor = 90 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Prism dev"}, CommonName: r.Name},
		DNSNames:     r.DNSNames,
		IPAddresses:  r.IPs,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(r.ValidFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // never outlive the issuer
	}
	if r.URI != "" {
		id, err := url.Parse(r.URI)
		if err != nil || id.Scheme != "spiffe" || id.Host == "" || id.RawQuery != "" || id.Fragment != "" {
			return nil, fmt.Errorf("certs: URI SAN %q is not a spiffe://<trust domain>/<path> ID", r.URI)
		}
		tmpl.URIs = []*url.URL{id}
	} else if r.Name != "" {
		id, err := url.Parse(ca.ID(r.Name))
		if err != nil {
			return nil, fmt.Errorf("certs: name %q: %w", r.Name, err)
		}
		tmpl.URIs = []*url.URL{id}
	}
	if r.Usage&ServerAuth != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if r.Usage&ClientAuth != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate %s: %w", r.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate %s: %w", r.Name, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: kp}, nil
}

// LoadCA reads a CA written by WriteDevSet.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, fmt.Errorf("certs: %s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certFile, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, fmt.Errorf("certs: %s is not a CA with a signing key", certFile)
	}
	return &CA{Cert: cert, key: signer}, nil
}

// DevSet names the files WriteDevSet writes, relative to its directory.
// Envoy's SDS secrets reference ca.pem, server.pem and server-key.pem.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// WriteDevSet writes a CA, a server certificate for Envoy (hosts as DNS or
// IP SANs, identity spiffe://<td>/envoy) and one client certificate per
// name (<name>.pem, <name>-key.pem) into dir. Keys are written 0600.
func WriteDevSet(dir, trustDomain string, hosts, clients []string) (*CA, error) {
	ca, err := NewCA(trustDomain, 0)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := write(dir, CAFile, ca.CertPEM(), CAKeyFile, caKey); err != nil {
		return nil, err
	}
	if err := writeServer(ca, dir, hosts); err != nil {
		return nil, err
	}
	for _, name := range clients {
		c, err := ca.Issue(Request{Name: name, Usage: ClientAuth})
		if err != nil {
			return nil, err
		}
		base := strings.ReplaceAll(name, "/", "_")
		if err := write(dir, base+".pem", c.CertPEM, base+"-key.pem", c.KeyPEM); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

func write(dir, certName string, cert []byte, keyName string, key []byte) error {
	if err := os.WriteFile(filepath.Join(dir, certName), cert, 0o644); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), key, 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// serial is a random 128-bit serial number, as RFC 5280 recommends.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// EnsureDevSet loads the CA and server certificate WriteDevSet wrote into
// dir, or writes a new set (no client certificates) when dir has no CA yet:
// `prism dev --tls` keeps its CA across restarts, so client certificates
// issued earlier stay valid.
func EnsureDevSet(dir, trustDomain string, hosts []string) (*CA, error) {
	caPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(caPath); errors.Is(err, os.ErrNotExist) {
		return WriteDevSet(dir, trustDomain, hosts, nil)
	}
	ca, err := LoadCA(caPath, keyPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, ServerFile)); errors.Is(err, os.ErrNotExist) {
		if err := writeServer(ca, dir, hosts); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// WriteClient issues a client certificate into dir as <name>.pem and
// <name>-key.pem. Its URI SAN is uri when set (it must be a spiffe:// URI,
// possibly of another trust domain), else the CA's SPIFFE ID of name. It
// returns the two paths.
func WriteClient(ca *CA, dir, name, uri string) (certPath, keyPath string, err error) {
	if name == "" {
		return "", "", errors.New("certs: a client certificate needs a name")
	}
	c, err := ca.Issue(Request{Name: name, URI: uri, Usage: ClientAuth})
	if err != nil {
		return "", "", err
	}
	base := strings.ReplaceAll(name, "/", "_")
	if err := write(dir, base+".pem", c.CertPEM, base+"-key.pem", c.KeyPEM); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem"), nil
}

// writeServer issues the server certificate of a dev set.
func writeServer(ca *CA, dir string, hosts []string) error {
	srv := Request{Name: "envoy", Usage: ServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPs = append(srv.IPs, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	s, err := ca.Issue(srv)
	if err != nil {
		return err
	}
	return write(dir, ServerFile, s.CertPEM, ServerKeyFile, s.KeyPEM)
}
