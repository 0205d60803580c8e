package api

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // exporters may compress
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"switchboard/internal/problem"
)

// OTLPGRPCServer returns a gRPC server with OTLP's trace service: the same
// ingest as POST /v1/traces (an API token with the ingest permission, in
// the authorization metadata), for exporters that speak gRPC. Messages
// are bounded as HTTP bodies are, decompressed.
func (a *API) OTLPGRPCServer() *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(MaxOTLPDecompressed))
	ptraceotlp.RegisterGRPCServer(s, &otlpTraces{a: a})
	return s
}

type otlpTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	a *API
}

func (o *otlpTraces) Export(ctx context.Context, er ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	tok := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if t, ok := strings.CutPrefix(v, "Bearer "); ok {
				tok = strings.TrimSpace(t)
			}
		}
	}
	p, err := o.a.ingestPrincipal(ctx, tok)
	if err != nil {
		return ptraceotlp.ExportResponse{}, o.grpcError(ctx, err)
	}
	if !o.a.ingest.Acquire(ctx, ingestWait) {
		return ptraceotlp.ExportResponse{}, o.grpcError(ctx, errIngestBusy)
	}
	defer o.a.ingest.Release()
	resp, err := o.a.storeSpans(ctx, p, er)
	if err != nil {
		return ptraceotlp.ExportResponse{}, o.grpcError(ctx, err)
	}
	return resp, nil
}

// grpcError is err as the gRPC status OTLP names for it: exporters retry
// Unavailable and ResourceExhausted (after the retry-after the trailer
// gives), and drop the rest.
func (o *otlpTraces) grpcError(ctx context.Context, err error) error {
	p, ok := problem.As(err)
	if !ok {
		o.a.log.ErrorContext(ctx, "ingest spans", "err", err)
		return status.Error(codes.Unavailable, "the spans could not be stored; retry")
	}
	code := map[string]codes.Code{problem.CodeInvalid: codes.InvalidArgument, problem.CodeUnauthenticated: codes.Unauthenticated,
		problem.CodeForbidden: codes.PermissionDenied, problem.CodeNotFound: codes.Unauthenticated, problem.CodeTooLarge: codes.InvalidArgument,
		problem.CodeRateLimited: codes.ResourceExhausted, problem.CodeUnavailable: codes.Unavailable}[p.Code]
	if code == codes.OK {
		code = codes.Internal
	}
	st := status.New(code, p.Message)
	if p.RetryAfter > 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after", strconv.Itoa(p.RetryAfter)))
		// OTLP's exporters retry ResourceExhausted only when it carries
		// RetryInfo, after its delay.
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(p.RetryAfter) * time.Second)}); err == nil {
			st = d
		}
	}
	return st.Err()
}
