package kit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

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

// quotedInputLength is how many characters of a caller's text a status message repeats.
const quotedInputLength = 80

// quoteInput is a caller's text as a status message may repeat it: JSON-quoted (control characters come out
// as escapes, invalid UTF-8 as U+FFFD) and cut after 80 characters, followed by "… (<length> characters)" when
// cut, as the host quotes (src/api/error-text.ts). The message travels in a trailer: a 64 KiB id repeated whole
// would not fit it.
func quoteInput(text string) string {
	cut, rest := cutRunes(text, quotedInputLength)
	var quoted strings.Builder
	encoder := json.NewEncoder(&quoted)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(cut) // a string always encodes
	out := strings.TrimSuffix(quoted.String(), "\n")
	if rest {
		out += fmt.Sprintf("… (%d characters)", utf8.RuneCountInString(text))
	}
	return out
}

// cutRunes is text's first n characters, and whether any were left over.
func cutRunes(text string, n int) (string, bool) {
	for i := range text {
		if n == 0 {
			return text[:i], true
		}
		n--
	}
	return text, false
}

// maxMessageLength bounds every status message the kit sends, as the host's. Its own messages quote input
// with quoteInput; this bounds the rest, where a library or a plugin repeats a value of the request.
const maxMessageLength = 2000

// statusMessage is message as it is sent: valid UTF-8, and cut after maxMessageLength characters.
func statusMessage(message string) string {
	message = strings.ToValidUTF8(message, "\uFFFD")
	if cut, rest := cutRunes(message, maxMessageLength); rest {
		return fmt.Sprintf("%s… (cut from %d characters)", cut, utf8.RuneCountInString(message))
	}
	return message
}

// toStatus turns what a plugin method returned into the error grpc-go sends: an *Error or a status error
// (also wrapped) keeps its code (and a status its details); any other error becomes INTERNAL with its message.
// Every message is bounded by statusMessage.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var kitErr *Error
	if errors.As(err, &kitErr) {
		return status.Error(kitErr.Code, statusMessage(kitErr.Message))
	}
	if s, ok := status.FromError(err); ok {
		answer := s.Proto()
		answer.Message = statusMessage(answer.GetMessage())
		return status.FromProto(answer).Err()
	}
	message := err.Error()
	if message == "" {
		message = "internal error"
	}
	return status.Error(codes.Internal, statusMessage(message))
}

// panicError turns a recovered panic into INTERNAL with the panic value, so one bad call costs one system
// failure and the sidecar keeps serving.
func panicError(value any) error {
	return status.Error(codes.Internal, statusMessage(fmt.Sprintf("panic: %v", value)))
}
