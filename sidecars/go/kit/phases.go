package kit

import (
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Result is what Get, Do and Handle return: the phase and, with PHASE_SUCCESS, the task's outputs. Build it
// with the named constructors ([Success], [Running], [PermanentFailure], ...), after Flyte's
// PhaseInfoSuccess, PhaseInfoRunning and friends, rather than by hand.
type Result struct {
	PhaseInfo *pb.PhaseInfo
	// Outputs is any value that encodes to a JSON object (a map or a struct with json tags).
	Outputs any
}

// Detail adds optional information to a Result: a version, log links, custom info.
type Detail func(*pb.PhaseInfo)

// WithVersion raises the version within the phase, to report a change (new logs, new info) while the
// phase stays the same: the host records only changes of (phase, version, reason).
func WithVersion(version uint32) Detail { return func(p *pb.PhaseInfo) { p.Version = version } }

// WithLogs attaches links to the execution's logs.
func WithLogs(logs ...*pb.TaskLog) Detail {
	return func(p *pb.PhaseInfo) { p.Logs = append(p.Logs, logs...) }
}

// WithLog attaches one log link.
func WithLog(uri, name string) Detail { return WithLogs(&pb.TaskLog{Uri: uri, Name: name}) }

// WithReason sets the reason of a Success (the other constructors take it as an argument).
func WithReason(reason string) Detail { return func(p *pb.PhaseInfo) { p.Reason = reason } }

// WithCustomInfo attaches plugin-specific information to show, such as a job id or progress. The value
// must encode to a JSON object; a value that does not fails the call with INTERNAL.
func WithCustomInfo(info any) Detail {
	return func(p *pb.PhaseInfo) {
		s, err := toStruct(info, "phaseInfo.customInfo")
		if err != nil {
			panic(err) // recovered by the kit and answered as INTERNAL: the plugin's bug
		}
		p.CustomInfo = s
	}
}

func phaseInfo(phase pb.Phase, reason string, details []Detail, failure *pb.ExecutionError) *pb.PhaseInfo {
	p := &pb.PhaseInfo{Phase: phase, Reason: reason, OccurredAt: timestamppb.Now(), Error: failure}
	for _, detail := range details {
		detail(p)
	}
	return p
}

// Success reports that the task finished; outputs become the execution's outputs.
func Success(outputs any, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_SUCCESS, "", details, nil), Outputs: outputs}
}

// Running reports that the remote work runs; the host asks again after the resync interval.
func Running(reason string, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_RUNNING, reason, details, nil)}
}

// Initializing reports that the remote work is being set up.
func Initializing(reason string, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_INITIALIZING, reason, details, nil)}
}

// Queued reports that the remote work waits in someone else's queue.
func Queued(reason string, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_QUEUED, reason, details, nil)}
}

// WaitingForResources reports that the remote work waits for a resource or a quota.
func WaitingForResources(reason string, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_WAITING_FOR_RESOURCES, reason, details, nil)}
}

// PermanentFailure reports that the task failed and retrying will not help. kind is usually
// pb.ErrorKind_ERROR_KIND_USER: the input is at fault.
func PermanentFailure(code, message string, kind pb.ErrorKind, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_PERMANENT_FAILURE, message, details,
		&pb.ExecutionError{Code: code, Message: message, Kind: kind})}
}

// RetryableFailure reports that the attempt failed in a way a new attempt may fix. kind is usually
// pb.ErrorKind_ERROR_KIND_SYSTEM.
func RetryableFailure(code, message string, kind pb.ErrorKind, details ...Detail) Result {
	return Result{PhaseInfo: phaseInfo(pb.Phase_PHASE_RETRYABLE_FAILURE, message, details,
		&pb.ExecutionError{Code: code, Message: message, Kind: kind})}
}

// IsTerminal reports whether a phase ends an attempt: no more calls follow for it.
func IsTerminal(phase pb.Phase) bool {
	switch phase {
	case pb.Phase_PHASE_SUCCESS, pb.Phase_PHASE_RETRYABLE_FAILURE, pb.Phase_PHASE_PERMANENT_FAILURE, pb.Phase_PHASE_ABORTED:
		return true
	}
	return false
}
