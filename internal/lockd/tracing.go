package lockd

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// traceOp starts a span of a lease operation (acquire, renew, release of a
// lock or an election) under ctx's span when that one is recorded, with
// the tracer that recorded it; done ends it with the operation's error.
// Under no recorded span it costs a context lookup.
func traceOp(ctx context.Context, k leaseKey, op string) (context.Context, func(error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	what := "lock"
	if k.Kind == kindElection {
		what = "election"
	}
	ctx, span := parent.TracerProvider().Tracer("switchboard/lockd").Start(ctx, what+" "+op,
		trace.WithAttributes(attribute.String("switchboard.lease.kind", what), attribute.String("switchboard.lease.name", k.Name)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

func noSpan(error) {}
