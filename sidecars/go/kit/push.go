package kit

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/protobuf/proto"
)

// PushSubjectPrefix is the NATS subject prefix of pushed statuses: a plugin pushes an execution's status on
// "pb.push.<execution id>", and the hosts share them in one queue group.
const PushSubjectPrefix = "pb.push."

// PushSubject is the subject an execution's status is pushed on, as the host listens for it.
func PushSubject(executionID string) string { return PushSubjectPrefix + executionID }

// ErrPushWithoutNATS is what [Server.Push] returns when the sidecar runs without NATS ([WithoutNATS]).
var ErrPushWithoutNATS = errors.New("push needs NATS; this sidecar runs without it")

// Push tells the hosts of a phase change of an execution attempt now, between polls: an async plugin's
// remote work that ended, a core plugin's attempt that moved on. One host applies it as it would the next
// Get's (async) or Handle's (core) report; for a core plugin a terminal phase is followed by Finalize, as
// after Handle. result is checked as a Get, Do or Handle answer is (build it with [Success], [Running] ...).
//
// It publishes a [pb.PushedStatus] (with this instance's id) on [PushSubject](executionID) and returns once
// the NATS server has it, bounded by ctx (5 s when ctx has no deadline). A sidecar with a token
// ([WithToken]) signs it: the message carries the headers [PushKeyIDHeader] (the token id) and
// [PushSignatureHeader]. A push is a shortcut, not a delivery: the host drops a push for another attempt,
// from an instance that does not serve the execution, or for an execution whose work has not started or has
// ended, and a lost push only waits for the next poll. So polling must keep reporting the same end.
//
// It fails, sending nothing, without NATS ([ErrPushWithoutNATS]), while NATS is not connected
// ([ErrNotConnected]), for an execution id that is not 1 to 64 letters, digits, '-' and '_', or for a result that
// Get could not answer either. A push is one NATS message, so it is bounded by the server's max_payload
// (1 MiB by default), not by the 16 MiB of a gRPC answer.
func (s *Server) Push(ctx context.Context, executionID string, attempt uint32, result Result) error {
	if s.link == nil {
		return ErrPushWithoutNATS
	}
	// The execution id is a NATS subject token, as the host builds it; anything else cannot be an execution of it.
	if !isExecutionID(executionID) {
		return fmt.Errorf("push: execution id %s is not one a host gives: %s", quoteInput(executionID), executionIDRule)
	}
	info, outputs, err := phaseResponse(result, "push")
	if err != nil {
		return err
	}
	data, err := proto.Marshal(&pb.PushedStatus{
		ExecutionId: executionID,
		Attempt:     attempt,
		InstanceId:  s.instanceID,
		PhaseInfo:   info,
		Outputs:     outputs,
	})
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	msg := &nats.Msg{Subject: PushSubject(executionID), Data: data}
	// Signed over the exact bytes published, so the host checks what it receives.
	if signer := s.settings.signer; signer != nil {
		msg.Header = nats.Header{}
		msg.Header.Set(PushKeyIDHeader, signer.id)
		msg.Header.Set(PushSignatureHeader, signer.signPush(data))
	}
	if err := s.link.publish(ctx, msg); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	s.log.Debug("pushed", "execution", executionID, "attempt", attempt, "phase", info.GetPhase().String())
	return nil
}

// errNoServer is what Task.Push returns for a Task the kit did not make.
var errNoServer = errors.New("push: this Task did not come from a running kit")

// Push pushes the status of this task's execution attempt: [Server.Push] with the task's ExecutionID and
// Attempt, on the server that made the call. The Task may be kept after the call returns, to push when the
// work ends (from a goroutine, a watch or a callback of the remote system).
func (t *Task[S]) Push(ctx context.Context, result Result) error {
	if t.server == nil {
		return errNoServer
	}
	return t.server.Push(ctx, t.ExecutionID, t.Attempt, result)
}
