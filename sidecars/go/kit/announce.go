package kit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// AnnouncementTTLSeconds is how long after heartbeat_at a host still trusts an announcement.
	AnnouncementTTLSeconds = 10
	// DefaultHeartbeatInterval is how often an instance refreshes its announcement.
	DefaultHeartbeatInterval = 3 * time.Second
)

// announcer keeps a live instance's key in pb_plugins: put once the server is SERVING, then at every
// heartbeat. The bucket's TTL removes the key of an instance that died without a word; a draining instance
// says so, then deletes its key. Every host watches the bucket: that watch is its routing table. With a
// token, every write (the first, each heartbeat, the draining one) is signed.
type announcer struct {
	link       *natsLink
	key        string
	instanceID string
	endpoint   string
	descriptor *pb.PluginDescriptor
	startedAt  *timestamppb.Timestamp
	interval   time.Duration
	token      *token // signs every write; nil announces unsigned
	log        *slog.Logger

	mu        sync.Mutex // one write at a time: the later one must win
	draining  bool
	announced chan struct{}
	once      sync.Once
	stop      chan struct{}
	done      chan struct{}
}

func (a *announcer) start() {
	a.announced, a.stop, a.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go a.run()
}

func (a *announcer) run() {
	defer close(a.done)
	a.log.Info("waiting for NATS", "key", a.key)
	select {
	case <-a.link.connected:
	case <-a.stop:
		return
	}
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	for {
		a.put()
		select {
		case <-ticker.C:
		case <-a.stop:
			return
		}
	}
}

func (a *announcer) put() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	value, err := a.encode(&pb.PluginInstance{
		InstanceId:  a.instanceID,
		Endpoint:    a.endpoint,
		Descriptor_: a.descriptor,
		StartedAt:   a.startedAt,
		HeartbeatAt: timestamppb.Now(),
		Draining:    a.draining,
	})
	if err != nil {
		a.log.Error("cannot encode the announcement", "error", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := a.link.bucket(ctx, pluginsBucketConfig)
	if err == nil {
		_, err = kv.Put(ctx, a.key, value)
	}
	if err != nil {
		a.log.Warn("announcement failed; retrying at the next heartbeat", "key", a.key, "error", err)
		return false
	}
	a.once.Do(func() {
		attributes := []any{"key", a.key, "endpoint", a.endpoint}
		if a.token != nil {
			attributes = append(attributes, "signedBy", a.token.id) // who signs, never the token
		}
		a.log.Info("announced", attributes...)
		close(a.announced)
	})
	return true
}

// encode is the value of one write. Without a token the instance is stored as it is. With one, the
// instance is serialized here, once, and those very bytes are stored and signed: protobuf encodings differ
// between languages, so a host checks the signature over the bytes it reads, never over a re-encoding.
func (a *announcer) encode(instance *pb.PluginInstance) ([]byte, error) {
	if a.token == nil {
		return proto.Marshal(&pb.PluginAnnouncement{Instance: instance, TtlSeconds: AnnouncementTTLSeconds})
	}
	signed, err := proto.Marshal(instance)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&pb.PluginAnnouncement{
		TtlSeconds:     AnnouncementTTLSeconds,
		SignedInstance: signed,
		KeyId:          a.token.id,
		Signature:      a.token.signAnnouncement(AnnouncementTTLSeconds, signed),
	})
}

// setDraining announces draining=true at once, so hosts stop routing new work here.
func (a *announcer) setDraining() {
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
	select {
	case <-a.link.connected:
		a.put()
	default:
	}
}

// withdraw stops the heartbeat and deletes the key.
func (a *announcer) withdraw() {
	close(a.stop)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := a.link.bucket(ctx, pluginsBucketConfig)
	if err == nil {
		err = kv.Delete(ctx, a.key)
	}
	if err != nil {
		// The bucket's TTL removes the key anyway; hosts also see draining=true until then.
		a.log.Warn("could not delete the announcement; it expires with the bucket's TTL", "key", a.key, "error", err)
		return
	}
	a.log.Info("announcement withdrawn", "key", a.key)
}
