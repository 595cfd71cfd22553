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

// Create and Finalize are idempotent by execution id and attempt (DESIGN.md rule 3): a Create retried after a
// crash, a timeout or a duplicate delivery returns the resource meta of the first one and starts nothing twice,
// and a repeated Finalize answers OK without releasing anything twice. Within one process, concurrent
// duplicates share one call; across processes and restarts the result (the meta, or a marker for Finalize) is
// stored in the pb_creates KV bucket, under createKey or finalizeKey.

// idempotencyStore is where finished calls are remembered.
type idempotencyStore interface {
	// get returns the stored result, or found=false if this key never completed.
	get(ctx context.Context, key string) (result []byte, found bool, err error)
	// putIfAbsent stores result unless the key exists, and returns what is stored afterwards (someone else's
	// result if they won).
	putIfAbsent(ctx context.Context, key string, result []byte) ([]byte, error)
}

type kvIdempotencyStore struct{ link *natsLink }

func (s kvIdempotencyStore) get(ctx context.Context, key string) ([]byte, bool, error) {
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

func (s kvIdempotencyStore) putIfAbsent(ctx context.Context, key string, result []byte) ([]byte, error) {
	kv, err := s.link.bucket(ctx, createsBucketConfig)
	if err != nil {
		return nil, err
	}
	if _, err := kv.Create(ctx, key, result); err != nil {
		// Create fails when the key exists: another instance finished the same call first.
		if existing, found, getErr := s.get(ctx, key); getErr == nil && found {
			return existing, nil
		}
		return nil, err
	}
	return result, nil
}

// memoryIdempotencyStore serves a sidecar run without NATS (local development): idempotent in-process only.
type memoryIdempotencyStore struct {
	mu      sync.Mutex
	entries map[string][]byte
}

func (s *memoryIdempotencyStore) get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	result, ok := s.entries[key]
	return result, ok, nil
}

func (s *memoryIdempotencyStore) putIfAbsent(_ context.Context, key string, result []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.entries[key]; ok {
		return existing, nil
	}
	s.entries[key] = result
	return result, nil
}

// recentLimit bounds how many finished calls of one kind a process remembers itself: that memory covers a
// retry that comes back here while the store could not be written when the first call finished.
const recentLimit = 10_000

// storeTimeout bounds each store operation, so a stuck NATS costs a prompt UNAVAILABLE.
const storeTimeout = 5 * time.Second

type flight struct {
	done    chan struct{}
	result  []byte
	err     error
	waiters int
	cancel  context.CancelFunc
}

// idempotentCalls runs one kind of call (Create or Finalize) at most once per key.
type idempotentCalls struct {
	// call names the call in logs and in the UNAVAILABLE message: "create" or "finalize".
	call     string
	store    idempotencyStore
	log      *slog.Logger
	mu       sync.Mutex
	inFlight map[string]*flight
	recent   map[string]*list.Element
	order    *list.List // of recentEntry, oldest first
}

type recentEntry struct {
	key    string
	result []byte
}

func newIdempotentCalls(call string, store idempotencyStore, log *slog.Logger) *idempotentCalls {
	return &idempotentCalls{call: call, store: store, log: log.With("call", call),
		inFlight: map[string]*flight{}, recent: map[string]*list.Element{}, order: list.New()}
}

// run returns the result stored under key, or runs fn once and stores its result. fn gets a context that is
// cancelled only when every caller waiting for it has gone away. A failed fn is not remembered: the next
// call with the same key runs it again.
func (c *idempotentCalls) run(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if element, ok := c.recent[key]; ok {
		c.mu.Unlock()
		c.log.Info("already done; answering as this process remembers", "key", key)
		return element.Value.(recentEntry).result, nil
	}
	f := c.inFlight[key]
	if f != nil {
		c.log.Info("joining the same call already in progress", "key", key)
	} else {
		f = c.start(ctx, key, fn)
		c.inFlight[key] = f
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		c.leave(f, false)
		return f.result, f.err
	case <-ctx.Done():
		c.leave(f, true)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// leave drops one waiter; when the last one went away because its call ended, fn is told to stop.
func (c *idempotentCalls) leave(f *flight, abandoned bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters == 0 && abandoned {
		f.cancel()
	}
}

func (c *idempotentCalls) start(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) *flight {
	// The shared call outlives the first caller's deadline as long as someone still waits for it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		defer func() {
			if r := recover(); r != nil {
				recordPanic(runCtx, r)
				c.log.Error("panicked", "key", key, "panic", r)
				f.result, f.err = nil, panicError(r)
			}
			c.mu.Lock()
			delete(c.inFlight, key)
			if f.err == nil {
				c.remember(key, f.result)
			}
			c.mu.Unlock()
			cancel()
		}()
		f.result, f.err = c.once(runCtx, key, fn)
	}()
	return f
}

func (c *idempotentCalls) once(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	lookup, cancel := context.WithTimeout(ctx, storeTimeout)
	stored, found, err := c.store.get(lookup, key)
	cancel()
	if err != nil {
		// Without the store we cannot know whether this call already ran: refuse; the host retries.
		return nil, Errorf(codes.Unavailable, "%s idempotency store unavailable: %v", c.call, err)
	}
	if found {
		c.log.Info("already done; answering as the store remembers", "key", key)
		return stored, nil
	}
	result, err := fn(ctx)
	if err != nil {
		return nil, err
	}
	save, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	winner, err := c.store.putIfAbsent(save, key, result)
	if err != nil {
		// The work is done (a remote resource started, or released): answering with its result is better than
		// failing, which would make the host retry and do it again. The process remembers it for retries that
		// come back here.
		c.log.Error("could not store the result of a finished call", "key", key, "error", err)
		return result, nil
	}
	if !bytes.Equal(winner, result) {
		c.log.Warn("another instance finished the same call first; answering with its result", "key", key)
	}
	return winner, nil
}

// remember keeps key's result in the bounded in-process memory; the caller holds c.mu.
func (c *idempotentCalls) remember(key string, result []byte) {
	if element, ok := c.recent[key]; ok {
		c.order.Remove(element)
	}
	c.recent[key] = c.order.PushBack(recentEntry{key, result})
	if c.order.Len() > recentLimit {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.recent, oldest.Value.(recentEntry).key)
	}
}
