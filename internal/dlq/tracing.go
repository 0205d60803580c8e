package dlq

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
	"switchboard/internal/tracing"
)

// A replay is one trace: its id is the job's, every batch it publishes is
// a producer span in it, and every message carries that span's context
// (traceparent), so what a consumer does with a replayed message joins the
// same trace. The trace's root, the job itself, is recorded when the job
// is done (a job outlives restarts, so no span is held open for it); the
// batches name it as their parent all along.

// HeaderOriginalTraceparent keeps a replayed message's own traceparent,
// which the replay's takes the place of.
const HeaderOriginalTraceparent = "x-switchboard-original-traceparent"

var traceContext = propagation.TraceContext{}

func (r *Runner) tracer() trace.Tracer {
	if r.Tracer != nil {
		return r.Tracer
	}
	return noop.NewTracerProvider().Tracer("")
}

// jobSpan is the context of a job's root span.
func jobSpan(job Replay) trace.SpanContext {
	var sid trace.SpanID
	copy(sid[:], job.ID[8:])
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(job.ID), SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// startBatch starts the producer span of a batch of a job's messages to
// dest, linked to the traces the messages came from.
func (r *Runner) startBatch(ctx context.Context, tenant uuid.UUID, d DLQ, job Replay, system string, dest Destination, msgs []connectors.Message) (context.Context, trace.Span) {
	ctx = trace.ContextWithRemoteSpanContext(ctx, jobSpan(job))
	links := linksOf(len(msgs), func(i int) map[string]any { return msgs[i].Headers })
	name := dest.Topic
	if name == "" {
		name = dest.RoutingKey
	}
	return r.tracer().Start(ctx, "replay to "+name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(tracing.TenantKey.String(tenant.String()), attribute.String("switchboard.replay_id", job.ID.String()),
			attribute.String("switchboard.dlq", d.Ref), attribute.String("messaging.system", system),
			attribute.String("messaging.destination.name", name), attribute.Int("messaging.batch.message_count", len(msgs))))
}

// linksOf links to the spans n messages' traceparent headers name (at
// most tracing.MaxLinks).
func linksOf(n int, headers func(i int) map[string]any) []trace.Link {
	var links []trace.Link
	for i := 0; i < n && len(links) < tracing.MaxLinks; i++ {
		tp, ok := headers(i)["traceparent"]
		if !ok {
			continue
		}
		s, isBytes := tp.([]byte)
		text := string(s)
		if !isBytes {
			text = fmt.Sprint(tp)
		}
		sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": text}))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links
}

// traceCapture starts the span of a batch captured off a DLQ, linked to
// the traces its messages came from; the span is a root of its own.
func (c *Capture) traceCapture(ctx context.Context, d catalog.DeadLetterQueue, batch []connectors.Delivery) (context.Context, func(error)) {
	if c.Tracer == nil {
		return ctx, func(error) {}
	}
	links := linksOf(len(batch), func(i int) map[string]any { return batch[i].Headers })
	ctx, span := c.Tracer.Start(ctx, "capture from "+d.Ref, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(tracing.TenantKey.String(d.Tenant.String()), attribute.String("switchboard.dlq", d.Ref),
			attribute.String("messaging.destination.name", d.Name), attribute.Int("messaging.batch.message_count", len(batch))))
	return ctx, func(err error) { endBatch(span, err) }
}

// carry sets each message's traceparent to the batch span's, keeping one
// it had.
func carry(span trace.Span, msgs []connectors.Message) {
	c := propagation.MapCarrier{}
	traceContext.Inject(trace.ContextWithSpan(context.Background(), span), c)
	tp := c.Get("traceparent")
	if tp == "" {
		return
	}
	for i := range msgs {
		h := msgs[i].Headers
		if old, ok := h["traceparent"]; ok && fmt.Sprint(old) != tp {
			h[HeaderOriginalTraceparent] = old
		}
		h["traceparent"] = tp
	}
}

// endBatch ends a batch's span with how its publish went.
func endBatch(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceDone records a finished job's root span, from its start to now.
func (r *Runner) traceDone(tenant uuid.UUID, job Replay, state string) {
	sc := jobSpan(job)
	ctx := tracing.WithIDs(context.Background(), sc.TraceID(), sc.SpanID())
	_, span := r.tracer().Start(ctx, "replay of "+job.DLQ, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(job.CreatedAt),
		trace.WithAttributes(tracing.TenantKey.String(tenant.String()), attribute.String("switchboard.replay_id", job.ID.String()),
			attribute.String("switchboard.dlq", job.DLQ), attribute.String("switchboard.replay.state", state),
			attribute.String("switchboard.replay.created_by", job.CreatedBy), attribute.Int("switchboard.replay.total", job.Counts.Total),
			attribute.Int("switchboard.replay.confirmed", job.Counts.Confirmed), attribute.Int("switchboard.replay.failed", job.Counts.Failed)))
	span.End(trace.WithTimestamp(time.Now()))
}
