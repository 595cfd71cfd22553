package kit

import (
	"context"
	"fmt"
	"log/slog"

	pb "github.com/plugin-bridge/plugin-bridge/sidecars/go/gen/pluginbridge/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// registrar is what a plugin needs to put its service on the server.
type registrar struct {
	server grpc.ServiceRegistrar
	// store remembers finished Creates and Finalizes: pb_creates, or the process's memory without NATS.
	store idempotencyStore
	log   *slog.Logger
	// sidecar is the Server the plugin runs in: every Task carries it, for Task.Push.
	sidecar *Server
	err     error
}

// metadataServer answers Describe with the same descriptor every announcement carries.
type metadataServer struct {
	pb.UnimplementedPluginMetadataServiceServer
	descriptor *pb.PluginDescriptor
}

func (s metadataServer) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Plugin: s.descriptor}, nil
}

func (p *Async[S, M]) register(r *registrar) {
	if p.Create == nil || p.Get == nil || p.Delete == nil {
		r.err = fmt.Errorf("plugin %s: Create, Get and Delete must all be set", p.Name)
		return
	}
	creates := newIdempotentCalls("create", r.store, r.log)
	pb.RegisterAsyncPluginServiceServer(r.server, &asyncServer[S, M]{plugin: p, creates: creates, log: r.log, sidecar: r.sidecar})
}

func (p *Sync[S]) register(r *registrar) {
	if p.Do == nil {
		r.err = fmt.Errorf("plugin %s: Do must be set", p.Name)
		return
	}
	pb.RegisterSyncPluginServiceServer(r.server, &syncServer[S]{plugin: p, log: r.log, sidecar: r.sidecar})
}

func (p *Core[S]) register(r *registrar) {
	if p.Handle == nil || p.Abort == nil || p.Finalize == nil {
		r.err = fmt.Errorf("plugin %s: Handle, Abort and Finalize must all be set", p.Name)
		return
	}
	finalizes := newIdempotentCalls("finalize", r.store, r.log)
	pb.RegisterCorePluginServiceServer(r.server, &coreServer[S]{plugin: p, finalizes: finalizes, log: r.log, sidecar: r.sidecar})
}

// asyncServer is AsyncPluginService over an Async plugin, with Create made idempotent.
type asyncServer[S proto.Message, M any] struct {
	pb.UnimplementedAsyncPluginServiceServer
	plugin  *Async[S, M]
	creates *idempotentCalls
	log     *slog.Logger
	sidecar *Server
}

func (s *asyncServer[S, M]) Create(ctx context.Context, req *pb.CreateRequest) (*pb.CreateResponse, error) {
	// The task is decoded before the idempotency lookup, so a bad custom fails fast with its field.
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	key := createKey(s.plugin.Name, task.ExecutionID, task.Attempt)
	meta, err := s.creates.run(ctx, key, func(ctx context.Context) ([]byte, error) {
		task.Log.Info("create")
		m, err := s.plugin.Create(ctx, task)
		if err != nil {
			return nil, err
		}
		return encodeMeta(m)
	})
	if err != nil {
		return nil, err
	}
	return &pb.CreateResponse{ResourceMeta: meta}, nil
}

func (s *asyncServer[S, M]) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	meta, err := decodeMeta[M](req.GetResourceMeta())
	if err != nil {
		return nil, err
	}
	result, err := s.plugin.Get(ctx, task, meta)
	if err != nil {
		return nil, err
	}
	info, outputs, err := phaseResponse(result, "get")
	if err != nil {
		return nil, err
	}
	return &pb.GetResponse{PhaseInfo: info, Outputs: outputs}, nil
}

func (s *asyncServer[S, M]) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	meta, err := decodeMeta[M](req.GetResourceMeta())
	if err != nil {
		return nil, err
	}
	task.Log.Info("delete")
	if err := s.plugin.Delete(ctx, task, meta); err != nil {
		return nil, err
	}
	return &pb.DeleteResponse{}, nil
}

// syncServer is SyncPluginService over a Sync plugin.
type syncServer[S proto.Message] struct {
	pb.UnimplementedSyncPluginServiceServer
	plugin  *Sync[S]
	log     *slog.Logger
	sidecar *Server
}

func (s *syncServer[S]) Do(ctx context.Context, req *pb.DoRequest) (*pb.DoResponse, error) {
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	result, err := s.plugin.Do(ctx, task)
	if err != nil {
		return nil, err
	}
	info, outputs, err := phaseResponse(result, "do")
	if err != nil {
		return nil, err
	}
	// DoResponse carries the end of the task: a non-terminal phase would leave the host nothing to poll.
	if !IsTerminal(info.GetPhase()) {
		return nil, Errorf(codes.Internal, "do returned the non-terminal phase %s; sync plugins must finish the task", info.GetPhase())
	}
	return &pb.DoResponse{PhaseInfo: info, Outputs: outputs}, nil
}

// coreServer is CorePluginService over a Core plugin, with Finalize made idempotent.
type coreServer[S proto.Message] struct {
	pb.UnimplementedCorePluginServiceServer
	plugin    *Core[S]
	finalizes *idempotentCalls
	log       *slog.Logger
	sidecar   *Server
}

// finalizedMarker is what pb_creates holds under an attempt's finalizeKey once its Finalize succeeded:
// only the key's presence matters.
var finalizedMarker = []byte("finalized")

func (s *coreServer[S]) Handle(ctx context.Context, req *pb.HandleRequest) (*pb.HandleResponse, error) {
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	result, state, err := s.plugin.Handle(ctx, task, stateFromProto(req.GetState()))
	if err != nil {
		return nil, err
	}
	info, outputs, err := phaseResponse(result, "handle")
	if err != nil {
		return nil, err
	}
	return &pb.HandleResponse{PhaseInfo: info, State: stateToProto(state), Outputs: outputs}, nil
}

func (s *coreServer[S]) Abort(ctx context.Context, req *pb.AbortRequest) (*pb.AbortResponse, error) {
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	task.Log.Info("abort", "reason", req.GetReason())
	if err := s.plugin.Abort(ctx, task, stateFromProto(req.GetState()), req.GetReason()); err != nil {
		return nil, err
	}
	return &pb.AbortResponse{}, nil
}

func (s *coreServer[S]) Finalize(ctx context.Context, req *pb.FinalizeRequest) (*pb.FinalizeResponse, error) {
	// As for Create, a bad custom fails before the idempotency lookup.
	task, err := newTask[S](req.GetContext(), s.log, s.sidecar)
	if err != nil {
		return nil, err
	}
	state := stateFromProto(req.GetState())
	key := finalizeKey(s.plugin.Name, task.ExecutionID, task.Attempt)
	_, err = s.finalizes.run(ctx, key, func(ctx context.Context) ([]byte, error) {
		task.Log.Info("finalize")
		if err := s.plugin.Finalize(ctx, task, state); err != nil {
			return nil, err
		}
		return finalizedMarker, nil
	})
	if err != nil {
		return nil, err
	}
	return &pb.FinalizeResponse{}, nil
}

// phaseResponse checks and completes what a plugin returned from Get, Do or Handle.
func phaseResponse(result Result, method string) (*pb.PhaseInfo, *structpb.Struct, error) {
	if result.PhaseInfo == nil {
		return nil, nil, Errorf(codes.Internal, "%s returned no PhaseInfo; return kit.Success(), kit.Running() ...", method)
	}
	if result.PhaseInfo.GetPhase() == pb.Phase_PHASE_UNSPECIFIED {
		return nil, nil, Errorf(codes.Internal, "%s returned PHASE_UNSPECIFIED", method)
	}
	info := result.PhaseInfo
	if info.OccurredAt == nil {
		info = proto.Clone(info).(*pb.PhaseInfo)
		info.OccurredAt = timestamppb.Now()
	}
	outputs, err := toStruct(result.Outputs, "outputs")
	if err != nil {
		return nil, nil, err
	}
	return info, outputs, nil
}
