package kit

import (
	"encoding/json"

	"google.golang.org/grpc/codes"
)

// Resource meta is opaque bytes to the host. The kit lets a plugin return any Go value instead, stores its
// JSON and hands the decoded value back to Get and Delete, so most plugins never touch bytes; a plugin whose
// meta type is []byte gets its bytes passed through untouched.

func encodeMeta[M any](meta M) ([]byte, error) {
	if raw, ok := any(meta).([]byte); ok {
		return raw, nil
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return nil, Errorf(codes.Internal, "create returned resource meta JSON cannot encode: %v", err)
	}
	return data, nil
}

func decodeMeta[M any](data []byte) (M, error) {
	var meta M
	if _, ok := any(meta).([]byte); ok {
		return any(append([]byte(nil), data...)).(M), nil
	}
	if len(data) == 0 {
		return meta, nil
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return meta, Errorf(codes.InvalidArgument, "resource_meta is not the JSON this plugin's create returned: %v", err)
	}
	return meta, nil
}
