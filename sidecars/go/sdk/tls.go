package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig builds the TLS configuration of [WithTLS] from PEM:
//
//   - caPEM, when not empty, is the bundle of certificate authorities to trust for the host's certificate,
//     instead of the system's (a private CA, a self-signed host);
//   - certPEM and keyPEM, when not empty, are the client certificate (with its chain) and its private key,
//     presented to a host that requires mutual TLS. One without the other is an error.
func TLSConfig(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("sdk: the CA bundle holds no PEM certificate")
		}
	}
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		certificate, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("sdk: client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{certificate}
	case len(certPEM) > 0:
		return nil, errors.New("sdk: a client certificate needs its private key")
	case len(keyPEM) > 0:
		return nil, errors.New("sdk: a client key needs its certificate")
	}
	return config, nil
}

// TLSConfigFromFiles is [TLSConfig] with the PEM read from files; an empty name leaves that part out.
func TLSConfigFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	var pems [3][]byte
	for i, name := range []string{caFile, certFile, keyFile} {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		pems[i] = data
	}
	return TLSConfig(pems[0], pems[1], pems[2])
}
