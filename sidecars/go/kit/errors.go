package kit

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error answers a plugin call with a chosen gRPC code. The host reads the code to decide whose fault a
// failure is: INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND and the like fail the task as the user's
// error; INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED and the rest count as system failures it retries.
type Error struct {
	Code    codes.Code
	Message string
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code codes.Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Message }

// GRPCStatus lets grpc-go (and status.FromError) see the code, also through wrapping.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// toStatus turns what a plugin method returned into the error grpc-go sends: an *Error or a status error
// (also wrapped) keeps its code; any other error becomes INTERNAL with its message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var kitErr *Error
	if errors.As(err, &kitErr) {
		return status.Error(kitErr.Code, kitErr.Message)
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	message := err.Error()
	if message == "" {
		message = "internal error"
	}
	return status.Error(codes.Internal, message)
}

// panicError turns a recovered panic into INTERNAL with the panic value, so one bad call costs one system
// failure and the sidecar keeps serving.
func panicError(value any) error {
	if err, ok := value.(error); ok {
		return status.Errorf(codes.Internal, "panic: %v", err)
	}
	return status.Errorf(codes.Internal, "panic: %v", value)
}
