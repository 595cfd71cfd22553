package kit

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plugin-bridge/plugin-bridge/sidecars/go/internal/testenv"
)

// A protocol error makes nats-server drop a connection, and nats.go closes it for good instead of reconnecting
// (here: a subject longer than the server's control line, as a 64 KiB execution id once made). The link dials
// a new connection, and the buckets open again on it.
func TestLinkDialsAgainAfterNATSClosedItsConnectionForGood(t *testing.T) {
	n := testenv.StartNATS(t)
	link, err := connectNATS(n.URL, "link-test", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := link.bucket(ctx, createsBucketConfig); err != nil {
		t.Fatal(err)
	}

	first, _ := link.current()
	if err := first.Publish("pb.push."+strings.Repeat("x", 64<<10), nil); err != nil {
		t.Fatal(err)
	}
	_ = first.Flush()
	testenv.Eventually(t, 5*time.Second, "NATS to close the connection", first.IsClosed)
	if !strings.Contains(first.LastError().Error(), "maximum control line exceeded") {
		t.Fatalf("closed for %v", first.LastError())
	}

	testenv.Eventually(t, 10*time.Second, "a new connection", func() bool {
		conn, _ := link.current()
		return conn != first && conn.IsConnected()
	})
	kv, err := link.bucket(ctx, createsBucketConfig)
	if err != nil {
		t.Fatalf("the bucket on the new connection: %v", err)
	}
	if _, err := kv.Put(ctx, "link-test.e.1", []byte("x")); err != nil {
		t.Fatalf("a put on the new connection: %v", err)
	}

	// Closed by the kit, the link stays closed.
	link.close()
	time.Sleep(2 * redialWait)
	if conn, _ := link.current(); !conn.IsClosed() {
		t.Fatal("the link dialled again after close")
	}
}
