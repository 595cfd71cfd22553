package kit

import (
	"strings"
	"testing"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestJSONState(t *testing.T) {
	type progress struct {
		Job  string `json:"job"`
		Done int    `json:"done"`
	}
	state, err := JSONState(3, progress{Job: "j-1", Done: 2})
	if err != nil || state.Version != 3 || string(state.Data) != `{"job":"j-1","done":2}` {
		t.Fatalf("JSONState: %+v %v", state, err)
	}
	var back progress
	if err := state.DecodeJSON(&back); err != nil || back != (progress{"j-1", 2}) {
		t.Fatalf("DecodeJSON: %+v %v", back, err)
	}

	// No state yet: the value keeps what it had.
	var none *State
	kept := progress{Job: "zero"}
	if err := none.DecodeJSON(&kept); err != nil || kept.Job != "zero" {
		t.Fatalf("nil state: %+v %v", kept, err)
	}

	err = (&State{Version: 4, Data: []byte("3")}).DecodeJSON(&back)
	if status.Code(err) != codes.FailedPrecondition || !strings.HasPrefix(status.Convert(err).Message(), "state version 4 is not the JSON this plugin expects: ") {
		t.Errorf("wrong JSON: %v", err)
	}
	if _, err := JSONState(1, make(chan int)); status.Code(err) != codes.Internal {
		t.Errorf("unencodable state: %v", err)
	}
}

func TestStateProtoConversion(t *testing.T) {
	if stateFromProto(nil) != nil || stateToProto(nil) != nil {
		t.Fatal("a missing state must stay missing")
	}
	// A state that is set but empty is still a state: only its absence means the attempt's first Handle.
	if s := stateFromProto(&pb.PluginState{}); s == nil || s.Version != 0 || len(s.Data) != 0 {
		t.Fatalf("empty state: %+v", s)
	}
	if got := stateToProto(&State{Version: 2, Data: []byte{1}}); !proto.Equal(got, &pb.PluginState{Version: 2, Data: []byte{1}}) {
		t.Fatalf("to proto: %v", got)
	}
}
