package kit

import "regexp"

// executionIDPattern is what a host's execution ids look like (src/api/validation.ts, checkExecutionId): 1 to 64
// letters, digits, '-' and '_'. The kit puts the id in NATS names (the pb_creates keys of Create and Finalize,
// the pb.push.<id> subject), so anything else is refused before NATS sees it: a 64 KiB id overflows NATS's
// control line, and the server drops the connection that sent it.
var executionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// executionIDRule is what a call or a push says an execution id must be, after the quoted id.
const executionIDRule = "1 to 64 letters, digits, '-' and '_'"

// isExecutionID reports whether id is one a host gives.
func isExecutionID(id string) bool { return executionIDPattern.MatchString(id) }
