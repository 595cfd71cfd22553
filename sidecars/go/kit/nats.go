package kit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The bucket settings are part of the contract with the host and the other kits: whoever comes first
// creates a bucket, and everyone else opens it as it is, so all sides must keep the same settings.
const (
	// PluginsBucket holds one key per live sidecar instance, refreshed by its heartbeat.
	PluginsBucket = "pb_plugins"
	// CreatesBucket holds the resource meta of every Create, by plugin, execution and attempt, and a marker
	// for every Finalize that ran (createKey, finalizeKey).
	CreatesBucket = "pb_creates"
)

var (
	pluginsBucketConfig = jetstream.KeyValueConfig{
		Bucket:         PluginsBucket,
		History:        1,
		TTL:            15 * time.Second,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: 5 * time.Second,
	}
	createsBucketConfig = jetstream.KeyValueConfig{
		Bucket:  CreatesBucket,
		History: 1,
		TTL:     24 * time.Hour,
		Storage: jetstream.FileStorage,
	}
)

// ErrNotConnected is what bucket users and [Server.Push] see while NATS is down: they fail at once (Create and
// Finalize answer UNAVAILABLE) instead of hanging until a deadline or buffering for a reconnect.
var ErrNotConnected = errors.New("NATS is not connected yet")

// publishFlushTimeout bounds publish's wait for the server when the caller's context has no deadline.
const publishFlushTimeout = 5 * time.Second

// natsLink is a NATS connection that may not exist yet. A sidecar may start before NATS: the connection
// waits for the first connect and reconnects forever, and buckets open once it is up. nats.go does not
// reconnect after some protocol errors (the server's "maximum control line exceeded", for one): it closes the
// connection for good, and the sidecar would live on unannounced. The link then dials a new connection.
type natsLink struct {
	url       string
	options   []nats.Option // every connection's
	log       *slog.Logger
	connected chan struct{} // closed at the first successful connect
	once      sync.Once

	mu        sync.Mutex
	conn      *nats.Conn // the connection in use: replaced when NATS closed the last one for good
	js        jetstream.JetStream
	buckets   map[string]jetstream.KeyValue // opened on conn
	redialing bool                          // conn was closed for good and a new one is on its way
	closing   bool                          // close was called: a closed connection stays closed
}

// failedConnectsBetweenWarnings keeps a NATS that stays unreachable from filling the log: the first failed
// connect is a warning, then one in this many (the rest are debug lines).
const failedConnectsBetweenWarnings = 30

// redialWait is how long the link waits before it dials again after NATS closed its connection for good, so
// a server that keeps closing it (credentials revoked) is not dialled in a tight loop.
const redialWait = time.Second

// connectNATS connects with security (credentials, TLS; none for a plain connection) on top of the kit's own
// options.
func connectNATS(url, name string, security []nats.Option, log *slog.Logger) (*natsLink, error) {
	link := &natsLink{url: url, log: log, connected: make(chan struct{}), buckets: map[string]jetstream.KeyValue{}}
	var failedConnects atomic.Int64
	markConnected := func() {
		failedConnects.Store(0)
		link.once.Do(func() { close(link.connected) })
	}
	link.options = append([]nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("connected to NATS", "server", c.ConnectedUrlRedacted())
			markConnected()
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted())
			markConnected()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
			}
		}),
		// Says why a connect failed: NATS not up yet, or a certificate or credentials it refuses.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			level := slog.LevelDebug
			if n := failedConnects.Add(1); n%failedConnectsBetweenWarnings == 1 {
				level = slog.LevelWarn
			}
			log.Log(context.Background(), level, "NATS not reachable; retrying", "error", err)
		}),
		// What the server refused (nats.go would print it to stderr), such as the error that closes a connection.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "error", err)
		}),
		nats.ClosedHandler(link.closedForGood),
	}, security...)
	if err := link.dial(); err != nil {
		return nil, err
	}
	if conn, _ := link.current(); conn.IsConnected() {
		markConnected()
	}
	return link, nil
}

// dial makes a new connection the one in use. With RetryOnFailedConnect it returns at once when NATS is not
// up, and the connection keeps trying; it fails only for options nats.go refuses.
func (l *natsLink) dial() error {
	conn, err := nats.Connect(l.url, l.options...)
	if err != nil {
		return err
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return err
	}
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		conn.Close()
		return nats.ErrConnectionClosed
	}
	l.conn, l.js, l.buckets, l.redialing = conn, js, map[string]jetstream.KeyValue{}, false
	l.mu.Unlock()
	// Closed before it was the one in use, its ClosedHandler may have passed it over.
	if conn.IsClosed() {
		l.closedForGood(conn)
	}
	return nil
}

// closedForGood is every connection's ClosedHandler: unless the link is closing, or conn is no longer the one
// in use (or already being replaced), NATS ended it without a reconnect to come, and the link dials a new one
// after redialWait.
func (l *natsLink) closedForGood(conn *nats.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing || conn != l.conn || l.redialing {
		return
	}
	l.redialing = true
	l.log.Warn("NATS closed the connection for good; dialing again", "error", conn.LastError(), "in", redialWait)
	time.AfterFunc(redialWait, l.redial)
}

func (l *natsLink) redial() {
	if err := l.dial(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		l.log.Error("cannot dial NATS again; retrying", "error", err, "in", redialWait)
		time.AfterFunc(redialWait, l.redial)
	}
}

// current is the connection in use and its JetStream context.
func (l *natsLink) current() (*nats.Conn, jetstream.JetStream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn, l.js
}

// natsReplicas is PLUGIN_BRIDGE_NATS_REPLICAS: 1, 3 or 5 copies of a bucket the kit creates; anything else is 1.
func natsReplicas() int {
	switch os.Getenv("PLUGIN_BRIDGE_NATS_REPLICAS") {
	case "3":
		return 3
	case "5":
		return 5
	}
	return 1
}

// bucket opens a KV bucket, creating it with cfg when missing; it fails at once while NATS is down. An
// existing bucket is opened as it is (its settings are not compared), as the host and other kits do.
func (l *natsLink) bucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	l.mu.Lock()
	conn, js, buckets := l.conn, l.js, l.buckets
	kv := buckets[cfg.Bucket]
	l.mu.Unlock()
	if !conn.IsConnected() {
		return nil, ErrNotConnected
	}
	if kv != nil {
		return kv, nil
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// As many copies as the hosts make (PLUGIN_BRIDGE_NATS_REPLICAS, 3 in a NATS cluster).
		cfg.Replicas = natsReplicas()
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // someone else created it in between
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	// Kept with the connection it was opened on: a new connection starts with none.
	l.mu.Lock()
	buckets[cfg.Bucket] = kv
	l.mu.Unlock()
	return kv, nil
}

// publish sends a plain (core NATS) message, with its headers, then waits until the server has it, bounded
// by ctx (or by publishFlushTimeout when ctx has no deadline). It fails at once while NATS is down rather
// than leaving the message in the reconnect buffer, and after the connection was closed.
func (l *natsLink) publish(ctx context.Context, msg *nats.Msg) error {
	conn, _ := l.current()
	if conn.IsClosed() {
		return nats.ErrConnectionClosed
	}
	if !conn.IsConnected() {
		return ErrNotConnected
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := conn.PublishMsg(msg); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishFlushTimeout)
		defer cancel()
	}
	return conn.FlushWithContext(ctx)
}

// close flushes and closes the connection, bounded so a dead server cannot hold up shutdown; the link dials
// no more.
func (l *natsLink) close() {
	l.mu.Lock()
	l.closing = true
	conn := l.conn
	l.mu.Unlock()
	if conn.IsConnected() {
		_ = conn.FlushTimeout(2 * time.Second)
	}
	conn.Close()
}
