package kit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// The token's environment variables, as a host sets them for a sidecar it supervises and as an operator sets
// them for a remote one.
const (
	tokenEnv   = "PLUGIN_BRIDGE_TOKEN"
	tokenIDEnv = "PLUGIN_BRIDGE_TOKEN_ID"
)

// The NATS headers of a signed push. NATS headers are case-sensitive and the host reads exactly these.
const (
	PushKeyIDHeader     = "Pb-Key-Id"
	PushSignatureHeader = "Pb-Signature"
)

// The prefixes that keep an announcement's signature from ever being a valid push signature, and the other
// way round: the same token signs both.
var (
	announcementDomain = []byte("pbv1")
	pushDomain         = []byte("pbv1push")
)

// token is the sidecar's identity: the secret a host issued and the name it was issued for. With one, the
// kit signs every announcement and push, so a host that requires sidecar authentication can tell its
// sidecars from anything else that reaches NATS. The secret only ever keys an HMAC; it is never logged,
// published or put into an error.
type token struct {
	id     string
	secret []byte
}

// newToken checks that the id and the secret come together; neither is a token alone. It returns nil when
// neither is set: the sidecar then announces and pushes unsigned, as before tokens existed.
func newToken(id, secret string) (*token, error) {
	switch {
	case id == "" && secret == "":
		return nil, nil
	case id == "":
		return nil, fmt.Errorf("a sidecar token needs the id it was issued for: %s (or kit.WithToken's id) is empty", tokenIDEnv)
	case secret == "":
		return nil, fmt.Errorf("the token id %q needs its token: %s (or kit.WithToken's token) is empty", id, tokenEnv)
	}
	return &token{id: id, secret: []byte(secret)}, nil
}

// signAnnouncement is HMAC-SHA256 over "pbv1" || ttl (4 bytes, big-endian) || instance, where instance is the
// serialized PluginInstance exactly as it is stored in signed_instance.
func (t *token) signAnnouncement(ttlSeconds uint32, instance []byte) []byte {
	mac := hmac.New(sha256.New, t.secret)
	mac.Write(announcementDomain)
	mac.Write(binary.BigEndian.AppendUint32(nil, ttlSeconds))
	mac.Write(instance)
	return mac.Sum(nil)
}

// signPush is the lowercase hex of HMAC-SHA256 over "pbv1push" || payload, the bytes published.
func (t *token) signPush(payload []byte) string {
	mac := hmac.New(sha256.New, t.secret)
	mac.Write(pushDomain)
	mac.Write(payload)
	return hex.EncodeToString(mac.Sum(nil))
}
