package kit

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// toStruct turns any value that encodes to a JSON object into a Struct, by a JSON round trip: maps of any
// type, structs with json tags and nested slices all fit, where structpb.NewStruct takes only map[string]any.
func toStruct(value any, what string) (*structpb.Struct, error) {
	if value == nil {
		return nil, nil
	}
	if s, ok := value.(*structpb.Struct); ok {
		return s, nil
	}
	data, err := json.Marshal(value)
	if err != nil {
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("%s cannot be encoded as JSON: %v", what, err)}
	}
	if string(data) == "null" {
		return nil, nil
	}
	var object map[string]any
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("%s must encode to a JSON object", what)}
	}
	return structpb.NewStruct(object)
}
