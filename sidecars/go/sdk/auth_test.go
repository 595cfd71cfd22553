package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1/pluginbridgev1connect"
	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

// The bearer token goes with every call, unary and streaming, when set; the SDK falls back to
// PLUGIN_BRIDGE_API_TOKEN, never to the sidecars' PLUGIN_BRIDGE_TOKEN.
func TestBearerToken(t *testing.T) {
	t.Setenv("PLUGIN_BRIDGE_TOKEN", "a-sidecars-token")
	for _, c := range []struct {
		name, env string
		options   []Option
		want      string
	}{
		{"none", "", nil, ""},
		{"WithToken", "", []Option{WithToken("caller-token")}, "Bearer caller-token"},
		{"PLUGIN_BRIDGE_API_TOKEN", "api-token", nil, "Bearer api-token"},
		{"WithToken over PLUGIN_BRIDGE_API_TOKEN", "api-token", []Option{WithToken("caller-token")}, "Bearer caller-token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PLUGIN_BRIDGE_API_TOKEN", c.env)
			client, recorder := startRecorder(t, c.options...)
			calls(t, client, context.Background())
			for _, procedure := range []string{"get", "watch"} {
				if got := recorder.last(procedure).Values("Authorization"); strings.Join(got, ",") != c.want {
					t.Errorf("%s: authorization %q, want %q", procedure, got, c.want)
				}
			}
		})
	}
}

// tlsRecorder is the header recorder served over TLS on 127.0.0.1, counting the requests that get through
// and keeping the client certificate and HTTP version of the last.
type tlsRecorder struct {
	*headerRecorder
	url        string
	mu         sync.Mutex
	served     int
	client     string // the last client certificate's common name
	protoMajor int
}

func (r *tlsRecorder) last() (clientName string, protoMajor int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client, r.protoMajor
}

func (r *tlsRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served
}

// startTLSRecorder serves with a certificate from serverCA; with clientCA, it requires and checks a client
// certificate issued by it.
func startTLSRecorder(t *testing.T, serverCA, clientCA *testenv.CA) *tlsRecorder {
	t.Helper()
	certPEM, keyPEM := serverCA.Issue(t, "plugin-bridge host", x509.ExtKeyUsageServerAuth)
	certificate, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	recorder := &tlsRecorder{headerRecorder: &headerRecorder{headers: map[string]http.Header{}}}
	mux := http.NewServeMux()
	mux.Handle(pluginbridgev1connect.NewTaskServiceHandler(recorder.headerRecorder))
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		recorder.mu.Lock()
		recorder.served++
		recorder.protoMajor, recorder.client = req.ProtoMajor, ""
		if len(req.TLS.PeerCertificates) > 0 {
			recorder.client = req.TLS.PeerCertificates[0].Subject.CommonName
		}
		recorder.mu.Unlock()
		mux.ServeHTTP(w, req)
	}))
	server.EnableHTTP2 = true
	server.TLS = &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		server.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		server.TLS.ClientCAs = x509.NewCertPool()
		server.TLS.ClientCAs.AddCert(clientCA.Certificate)
	}
	server.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point of some tests
	server.StartTLS()
	t.Cleanup(server.Close)
	recorder.url = server.URL
	return recorder
}

func callOnce(client *Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Get(ctx, "e")
	return err
}

// An https:// base URL speaks gRPC over TLS with HTTP/2, trusting the CA it is given; without that CA, the
// host's certificate is refused.
func TestTLSWithCA(t *testing.T) {
	ca := testenv.NewCA(t, "test CA")
	server := startTLSRecorder(t, ca, nil)
	if !strings.HasPrefix(server.url, "https://127.0.0.1:") {
		t.Fatalf("server at %s", server.url)
	}

	config, err := TLSConfig(ca.PEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := New(server.url, WithTLS(config), WithToken("over-tls"))
	if err := callOnce(client); err != nil {
		t.Fatal(err)
	}
	if _, protoMajor := server.last(); protoMajor != 2 {
		t.Errorf("HTTP/%d, want HTTP/2", protoMajor)
	}
	if got := server.headerRecorder.last("get").Get("Authorization"); got != "Bearer over-tls" {
		t.Errorf("authorization %q", got)
	}
	if len(config.NextProtos) != 0 {
		t.Errorf("WithTLS changed the caller's config: NextProtos %q", config.NextProtos)
	}

	// Without the CA, the system's roots do not know the test CA.
	err = callOnce(New(server.url))
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Fatalf("without the CA: %v, want a certificate signed by an unknown authority", err)
	}
	// Nor does another CA.
	other, err := TLSConfig(testenv.NewCA(t, "another CA").PEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := callOnce(New(server.url, WithTLS(other))); !errors.As(err, &unknownAuthority) {
		t.Fatalf("with another CA: %v, want a certificate signed by an unknown authority", err)
	}
}

// A host that requires mutual TLS gets the client certificate the SDK is configured with, from PEM bytes or
// files, and refuses a client without one.
func TestMutualTLS(t *testing.T) {
	serverCA, clientCA := testenv.NewCA(t, "server CA"), testenv.NewCA(t, "client CA")
	server := startTLSRecorder(t, serverCA, clientCA)
	certPEM, keyPEM := clientCA.Issue(t, "sdk-caller", x509.ExtKeyUsageClientAuth)

	config, err := TLSConfig(serverCA.PEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := callOnce(New(server.url, WithTLS(config))); err != nil {
		t.Fatal(err)
	}
	if name, _ := server.last(); name != "sdk-caller" {
		t.Fatalf("the server saw client certificate %q", name)
	}

	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": serverCA.PEM, "cert.pem": certPEM, "key.pem": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fromFiles, err := TLSConfigFromFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := callOnce(New(server.url, WithTLS(fromFiles))); err != nil {
		t.Fatalf("from files: %v", err)
	}

	// Trusting the host is not enough: the host wants a certificate, and one from a CA it trusts. With TLS 1.3
	// the client may finish its handshake before the host's alert arrives, so the error's wording varies: what
	// counts is that the call fails and never reaches the service.
	served := server.count()
	withoutCertificate, err := TLSConfig(serverCA.PEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := callOnce(New(server.url, WithTLS(withoutCertificate))); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	strangerPEM, strangerKey := testenv.NewCA(t, "stranger CA").Issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	stranger, err := TLSConfig(serverCA.PEM, strangerPEM, strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := callOnce(New(server.url, WithTLS(stranger))); err == nil {
		t.Fatal("a client with an untrusted certificate was served")
	}
	if server.count() != served {
		t.Fatalf("%d refused calls reached the service", server.count()-served)
	}
}

func TestTLSConfigRefusals(t *testing.T) {
	ca := testenv.NewCA(t, "test CA")
	certPEM, keyPEM := ca.Issue(t, "c", x509.ExtKeyUsageClientAuth)
	for _, c := range []struct {
		name          string
		ca, cert, key []byte
		message       string
	}{
		{"a CA bundle without certificates", []byte("not PEM"), nil, nil, "no PEM certificate"},
		{"a certificate without its key", nil, certPEM, nil, "needs its private key"},
		{"a key without its certificate", nil, nil, keyPEM, "needs its certificate"},
		{"a key that does not match", nil, certPEM, mismatchedKey(t, ca), "client certificate"},
	} {
		if _, err := TLSConfig(c.ca, c.cert, c.key); err == nil || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: %v, want %q", c.name, err, c.message)
		}
	}
	if _, err := TLSConfigFromFiles(filepath.Join(t.TempDir(), "missing.pem"), "", ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

func mismatchedKey(t *testing.T, ca *testenv.CA) []byte {
	t.Helper()
	_, key := ca.Issue(t, "other", x509.ExtKeyUsageClientAuth)
	return key
}
