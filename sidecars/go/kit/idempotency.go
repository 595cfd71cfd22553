package kit

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Create is idempotent by execution id and attempt (DESIGN.md rule 3): a retried Create after a crash, a
// timeout or a duplicate delivery returns the resource meta of the first one and starts nothing twice.
// Within one process, concurrent duplicates share one call; across processes and restarts the meta is
// stored in the pb_creates KV bucket under KVKey(plugin, execution, attempt).

// createStore is where finished Creates are remembered.
type createStore interface {
	// get returns the stored meta, or found=false if this key never completed.
	get(ctx context.Context, key string) (meta []byte, found bool, err error)
	// putIfAbsent stores meta unless the key exists, and returns what is stored afterwards (someone else's
	// meta if they won).
	putIfAbsent(ctx context.Context, key string, meta []byte) ([]byte, error)
}

type kvCreateStore struct{ link *natsLink }

func (s kvCreateStore) get(ctx context.Context, key string) ([]byte, bool, error) {
	kv, err := s.link.bucket(ctx, createsBucketConfig)
	if err != nil {
		return nil, false, err
	}
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return entry.Value(), true, nil
}

func (s kvCreateStore) putIfAbsent(ctx context.Context, key string, meta []byte) ([]byte, error) {
	kv, err := s.link.bucket(ctx, createsBucketConfig)
	if err != nil {
		return nil, err
	}
	if _, err := kv.Create(ctx, key, meta); err != nil {
		// Create fails when the key exists: another instance finished the same Create first.
		if existing, found, getErr := s.get(ctx, key); getErr == nil && found {
			return existing, nil
		}
		return nil, err
	}
	return meta, nil
}

// memoryCreateStore serves a sidecar run without NATS (local development): idempotent in-process only.
type memoryCreateStore struct {
	mu      sync.Mutex
	entries map[string][]byte
}

func (s *memoryCreateStore) get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta, ok := s.entries[key]
	return meta, ok, nil
}

func (s *memoryCreateStore) putIfAbsent(_ context.Context, key string, meta []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.entries[key]; ok {
		return existing, nil
	}
	s.entries[key] = meta
	return meta, nil
}

// recentLimit bounds how many finished Creates a process remembers itself: that memory covers a retry that
// comes back here while the store could not be written when the first Create finished.
const recentLimit = 10_000

// storeTimeout bounds each store operation, so a stuck NATS costs a prompt UNAVAILABLE.
const storeTimeout = 5 * time.Second

type flight struct {
	done    chan struct{}
	meta    []byte
	err     error
	waiters int
	cancel  context.CancelFunc
}

type idempotentCreates struct {
	store    createStore
	log      *slog.Logger
	mu       sync.Mutex
	inFlight map[string]*flight
	recent   map[string]*list.Element
	order    *list.List // of recentEntry, oldest first
}

type recentEntry struct {
	key  string
	meta []byte
}

func newIdempotentCreates(store createStore, log *slog.Logger) *idempotentCreates {
	return &idempotentCreates{store: store, log: log, inFlight: map[string]*flight{}, recent: map[string]*list.Element{}, order: list.New()}
}

// run returns the meta stored under key, or runs create once and stores its result. create gets a context
// that is cancelled only when every caller waiting for it has gone away.
func (c *idempotentCreates) run(ctx context.Context, key string, create func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if element, ok := c.recent[key]; ok {
		c.mu.Unlock()
		c.log.Info("Create already done; returning the resource meta remembered by this process", "key", key)
		return element.Value.(recentEntry).meta, nil
	}
	f := c.inFlight[key]
	if f != nil {
		c.log.Info("joining a Create already in progress", "key", key)
	} else {
		f = c.start(ctx, key, create)
		c.inFlight[key] = f
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		c.leave(f, false)
		return f.meta, f.err
	case <-ctx.Done():
		c.leave(f, true)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// leave drops one waiter; when the last one went away because its call ended, the plugin's create is told
// to stop.
func (c *idempotentCreates) leave(f *flight, abandoned bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters == 0 && abandoned {
		f.cancel()
	}
}

func (c *idempotentCreates) start(ctx context.Context, key string, create func(context.Context) ([]byte, error)) *flight {
	// The shared call outlives the first caller's deadline as long as someone still waits for it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("create panicked", "key", key, "panic", r)
				f.meta, f.err = nil, panicError(r)
			}
			c.mu.Lock()
			delete(c.inFlight, key)
			if f.err == nil {
				c.remember(key, f.meta)
			}
			c.mu.Unlock()
			cancel()
		}()
		f.meta, f.err = c.once(runCtx, key, create)
	}()
	return f
}

func (c *idempotentCreates) once(ctx context.Context, key string, create func(context.Context) ([]byte, error)) ([]byte, error) {
	lookup, cancel := context.WithTimeout(ctx, storeTimeout)
	stored, found, err := c.store.get(lookup, key)
	cancel()
	if err != nil {
		// Without the store we cannot know whether this Create already ran: refuse; the host retries.
		return nil, Errorf(codes.Unavailable, "create idempotency store unavailable: %v", err)
	}
	if found {
		c.log.Info("Create already done; returning the stored resource meta", "key", key)
		return stored, nil
	}
	meta, err := create(ctx)
	if err != nil {
		return nil, err
	}
	save, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	winner, err := c.store.putIfAbsent(save, key, meta)
	if err != nil {
		// The remote work has started: answering with its meta is better than failing, which would make
		// the host retry and start it again. The process remembers it for retries that come back here.
		c.log.Error("could not store the resource meta of a finished Create", "key", key, "error", err)
		return meta, nil
	}
	if !bytes.Equal(winner, meta) {
		c.log.Warn("another instance finished the same Create first; returning its resource meta", "key", key)
	}
	return winner, nil
}

// remember keeps key's meta in the bounded in-process memory; the caller holds c.mu.
func (c *idempotentCreates) remember(key string, meta []byte) {
	if element, ok := c.recent[key]; ok {
		c.order.Remove(element)
	}
	c.recent[key] = c.order.PushBack(recentEntry{key, meta})
	if c.order.Len() > recentLimit {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.recent, oldest.Value.(recentEntry).key)
	}
}
