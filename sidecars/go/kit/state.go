package kit

import (
	"encoding/json"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/grpc/codes"
)

// State is a core plugin's own state for one attempt, after Flyte's PluginStateReader and PluginStateWriter:
// opaque to the host, which keeps it in the execution's record and passes it to every later call of the
// attempt. Version is the layout of Data, chosen by the plugin, so a new plugin version can tell an old
// state and convert or refuse it.
type State struct {
	Version uint32
	Data    []byte
}

// JSONState returns a state of the given version holding v's JSON, for a plugin that keeps a Go value as
// its state. A value JSON cannot encode is the plugin's bug: INTERNAL.
func JSONState(version uint32, v any) (*State, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, Errorf(codes.Internal, "state cannot be encoded as JSON: %v", err)
	}
	return &State{Version: version, Data: data}, nil
}

// DecodeJSON decodes the state's data into v. A nil state (the attempt's first Handle) leaves v as it is,
// so a plugin can decode into its zero value unconditionally. Data that is not the JSON of v answers
// FAILED_PRECONDITION: the state cannot go on, and retrying the same call will not help.
func (s *State) DecodeJSON(v any) error {
	if s == nil {
		return nil
	}
	if err := json.Unmarshal(s.Data, v); err != nil {
		return Errorf(codes.FailedPrecondition, "state version %d is not the JSON this plugin expects: %v", s.Version, err)
	}
	return nil
}

// stateFromProto is the State a call hands the plugin: nil when the request carries none.
func stateFromProto(state *pb.PluginState) *State {
	if state == nil {
		return nil
	}
	return &State{Version: state.GetVersion(), Data: state.GetData()}
}

// stateToProto is the PluginState a Handle answers with: unset when the plugin returned nil, which tells
// the host to keep the state it has.
func stateToProto(state *State) *pb.PluginState {
	if state == nil {
		return nil
	}
	return &pb.PluginState{Version: state.Version, Data: state.Data}
}
