package testenv

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/nats-io/nats.go"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/proto"
)

// These checks compute the HMACs of the authentication contract themselves, from its text, rather than with
// the kit's code: a test that signed and verified with the same function would pass whatever it signed.

// SignedInstance checks a stored announcement as a host that requires sidecar authentication does, and
// returns the instance it holds: signed by keyID, with the signature HMAC-SHA256(token, "pbv1" || ttl_seconds
// as 4 bytes big-endian || signed_instance), and no unsigned instance beside it.
func SignedInstance(t testing.TB, value []byte, keyID, token string) *pb.PluginInstance {
	t.Helper()
	announcement := &pb.PluginAnnouncement{}
	if err := proto.Unmarshal(value, announcement); err != nil {
		t.Fatalf("an announcement that does not decode: %v", err)
	}
	if announcement.GetInstance() != nil {
		t.Fatalf("a signed announcement with an unsigned instance: %v", announcement)
	}
	if announcement.GetKeyId() != keyID {
		t.Fatalf("key_id %q, want %q", announcement.GetKeyId(), keyID)
	}
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("pbv1"))
	var ttl [4]byte
	binary.BigEndian.PutUint32(ttl[:], announcement.GetTtlSeconds())
	mac.Write(ttl[:])
	mac.Write(announcement.GetSignedInstance())
	if !hmac.Equal(mac.Sum(nil), announcement.GetSignature()) {
		t.Fatalf("the announcement's signature does not hold (ttl %d, %d signed bytes)",
			announcement.GetTtlSeconds(), len(announcement.GetSignedInstance()))
	}
	instance := &pb.PluginInstance{}
	if err := proto.Unmarshal(announcement.GetSignedInstance(), instance); err != nil {
		t.Fatalf("signed_instance does not decode: %v", err)
	}
	return instance
}

// UnsignedInstance checks an announcement written without a token, as before tokens existed, and returns
// its instance.
func UnsignedInstance(t testing.TB, value []byte) *pb.PluginInstance {
	t.Helper()
	announcement := &pb.PluginAnnouncement{}
	if err := proto.Unmarshal(value, announcement); err != nil {
		t.Fatalf("an announcement that does not decode: %v", err)
	}
	if announcement.GetInstance() == nil || announcement.GetSignedInstance() != nil ||
		announcement.GetKeyId() != "" || announcement.GetSignature() != nil {
		t.Fatalf("an announcement without a token that is not as before: %v", announcement)
	}
	return announcement.GetInstance()
}

// CheckSignedPush checks a pushed status's headers: Pb-Key-Id is keyID and Pb-Signature the lowercase hex of
// HMAC-SHA256(token, "pbv1push" || the payload as received).
func CheckSignedPush(t testing.TB, msg *nats.Msg, keyID, token string) {
	t.Helper()
	if got := msg.Header.Get("Pb-Key-Id"); got != keyID {
		t.Fatalf("Pb-Key-Id %q, want %q", got, keyID)
	}
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("pbv1push"))
	mac.Write(msg.Data)
	if got, want := msg.Header.Get("Pb-Signature"), hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("Pb-Signature %q, want %q", got, want)
	}
}
