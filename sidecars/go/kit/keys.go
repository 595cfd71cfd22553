package kit

import (
	"fmt"
	"strings"
)

// KVKey builds a NATS KV key from free-form tokens, exactly as the TypeScript kit's kvKey and the host do.
// KV keys allow only [-/_=.A-Za-z0-9] with '.' separating tokens, while execution and instance ids may hold
// anything: each token keeps letters, digits, '-' and '_' and escapes every other UTF-8 byte as "=HH"
// (upper-case hex), and an empty token is "=". Plain replacement by '_' would let two ids share a key.
//
//	KVKey("sensor", "run.1", "2") == "sensor.run=2E1.2"
func KVKey(tokens ...any) string {
	escaped := make([]string, len(tokens))
	for i, token := range tokens {
		escaped[i] = escapeToken(fmt.Sprint(token))
	}
	return strings.Join(escaped, ".")
}

func escapeToken(token string) string {
	if token == "" {
		return "=" // '=' is otherwise always followed by two hex digits: unambiguous
	}
	var b strings.Builder
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// createKey is where pb_creates keeps the resource meta of an attempt's Create: "<plugin>.<execution>.<attempt>".
func createKey(plugin, execution string, attempt uint32) string {
	return KVKey(plugin, execution, attempt)
}

// finalizeKey is where pb_creates keeps the marker of an attempt's finished Finalize:
// "<plugin>.<execution>.<attempt>.finalize". The fourth token keeps it apart from every Create key, since no
// escaped token holds a '.'.
func finalizeKey(plugin, execution string, attempt uint32) string {
	return KVKey(plugin, execution, attempt, "finalize")
}
