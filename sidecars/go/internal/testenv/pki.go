package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	Certificate *x509.Certificate
	key         *ecdsa.PrivateKey
	// PEM is the CA's certificate, for whoever trusts it.
	PEM []byte
}

// serial is a random serial number, so that no two certificates of a test share one.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NewCA makes a CA named name, valid for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certificate, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{certificate, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue signs a leaf certificate for 127.0.0.1 (a server) or for a client, and returns it and its key as PEM.
func (ca *CA) Issue(t testing.TB, commonName string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		template.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.Certificate, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// NATSTLS is a PKI for a nats-server that speaks only TLS and requires client certificates: one CA signs the
// server's certificate and the client's.
type NATSTLS struct {
	// CA, ClientCert and ClientKey are a client's PEM files.
	CA, ClientCert, ClientKey string
	// ServerConfig is the tls block of the server's configuration (for StartNATSWithConfig).
	ServerConfig string
}

// NewNATSTLS writes a new CA, a server certificate for 127.0.0.1 and a client certificate into a temp dir.
func NewNATSTLS(t testing.TB) NATSTLS {
	t.Helper()
	dir := t.TempDir()
	ca := NewCA(t, "nats CA")
	serverCert, serverKey := ca.Issue(t, "nats-server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.Issue(t, "sidecar", x509.ExtKeyUsageClientAuth)
	path := func(name string, content []byte) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	n := NATSTLS{CA: path("ca.pem", ca.PEM), ClientCert: path("client.pem", clientCert), ClientKey: path("client-key.pem", clientKey)}
	n.ServerConfig = fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: true\n}\n",
		path("server.pem", serverCert), path("server-key.pem", serverKey), n.CA)
	return n
}
