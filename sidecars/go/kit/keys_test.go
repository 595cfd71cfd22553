package kit

import "testing"

func TestKVKeyEscapesLikeTheTypeScriptKit(t *testing.T) {
	cases := []struct {
		tokens []any
		want   string
	}{
		{[]any{"sensor", "run.1", 2}, "sensor.run=2E1.2"},
		{[]any{"batch", "", uint32(1)}, "batch.=.1"},
		{[]any{"p", "a b/c=d", "é"}, "p.a=20b=2Fc=3Dd.=C3=A9"},
		{[]any{"Plug_in-1", "k-0123abcdef"}, "Plug_in-1.k-0123abcdef"},
	}
	for _, c := range cases {
		if got := KVKey(c.tokens...); got != c.want {
			t.Errorf("KVKey(%v) = %q, want %q", c.tokens, got, c.want)
		}
	}
}

func TestIdempotencyKeys(t *testing.T) {
	if got := createKey("sensor", "run.1", 2); got != "sensor.run=2E1.2" {
		t.Errorf("createKey = %q", got)
	}
	// Four tokens: never the key of a Create, whatever the execution id holds.
	if got := finalizeKey("sensor", "run.1", 2); got != "sensor.run=2E1.2.finalize" {
		t.Errorf("finalizeKey = %q", got)
	}
	if finalizeKey("p", "e", 1) == createKey("p", "e.1", 1) || finalizeKey("p", "e", 1) == createKey("p", "e", 1) {
		t.Error("a finalize key equals a create key")
	}
}

func TestParseEndpoint(t *testing.T) {
	for text, want := range map[string]endpoint{
		"unix:/tmp/x.sock":   {unixPath: "/tmp/x.sock"},
		"unix:///tmp/y.sock": {unixPath: "/tmp/y.sock"},
		":0":                 {host: "127.0.0.1", port: 0},
		"0.0.0.0:9000":       {host: "0.0.0.0", port: 9000},
		"[::1]:7":            {host: "::1", port: 7},
	} {
		got, err := parseEndpoint(text)
		if err != nil || got != want {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want %+v", text, got, err, want)
		}
	}
	for _, bad := range []string{"nope", "unix:", "host:99999"} {
		if _, err := parseEndpoint(bad); err == nil {
			t.Errorf("parseEndpoint(%q) succeeded", bad)
		}
	}
}
