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
// waits for the first connect and reconnects forever, and buckets open once it is up.
type natsLink struct {
	conn      *nats.Conn
	js        jetstream.JetStream
	connected chan struct{} // closed at the first successful connect
	once      sync.Once
	mu        sync.Mutex
	buckets   map[string]jetstream.KeyValue
}

// failedConnectsBetweenWarnings keeps a NATS that stays unreachable from filling the log: the first failed
// connect is a warning, then one in this many (the rest are debug lines).
const failedConnectsBetweenWarnings = 30

// connectNATS connects with security (credentials, TLS; none for a plain connection) on top of the kit's own
// options.
func connectNATS(url, name string, security []nats.Option, log *slog.Logger) (*natsLink, error) {
	link := &natsLink{connected: make(chan struct{}), buckets: map[string]jetstream.KeyValue{}}
	var failedConnects atomic.Int64
	markConnected := func(c *nats.Conn) {
		failedConnects.Store(0)
		link.once.Do(func() {
			log.Info("connected to NATS", "server", c.ConnectedUrlRedacted())
			close(link.connected)
		})
	}
	options := append([]nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(markConnected),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted())
			markConnected(c)
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
	}, security...)
	conn, err := nats.Connect(url, options...)
	if err != nil {
		return nil, err
	}
	if conn.IsConnected() {
		markConnected(conn)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	link.conn, link.js = conn, js
	return link, nil
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
	if !l.conn.IsConnected() {
		return nil, ErrNotConnected
	}
	l.mu.Lock()
	kv := l.buckets[cfg.Bucket]
	l.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := l.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// As many copies as the hosts make (PLUGIN_BRIDGE_NATS_REPLICAS, 3 in a NATS cluster).
		cfg.Replicas = natsReplicas()
		kv, err = l.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // someone else created it in between
			kv, err = l.js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.buckets[cfg.Bucket] = kv
	l.mu.Unlock()
	return kv, nil
}

// publish sends a plain (core NATS) message, with its headers, then waits until the server has it, bounded
// by ctx (or by publishFlushTimeout when ctx has no deadline). It fails at once while NATS is down rather
// than leaving the message in the reconnect buffer, and after the connection was closed.
func (l *natsLink) publish(ctx context.Context, msg *nats.Msg) error {
	if l.conn.IsClosed() {
		return nats.ErrConnectionClosed
	}
	if !l.conn.IsConnected() {
		return ErrNotConnected
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.conn.PublishMsg(msg); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishFlushTimeout)
		defer cancel()
	}
	return l.conn.FlushWithContext(ctx)
}

// close flushes and closes the connection, bounded so a dead server cannot hold up shutdown.
func (l *natsLink) close() {
	if l.conn.IsConnected() {
		_ = l.conn.FlushTimeout(2 * time.Second)
	}
	l.conn.Close()
}
