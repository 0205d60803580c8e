package tracing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TenantKey is the attribute naming the tenant a span of the server's own
// belongs to (a replay's spans belong to the replay's tenant, so that the
// replay and what it caused read as one trace there). The exporter takes
// it off the span.
const TenantKey = attribute.Key("switchboard.tenant_id")

// SelfExporter stores the server's own spans (from the OpenTelemetry SDK)
// in the span store, each in the tenant its TenantKey names, or, without
// one, in Default (the system tenant; uuid.Nil: dropped).
type SelfExporter struct {
	Store   *Store
	Default uuid.UUID
}

var _ sdktrace.SpanExporter = (*SelfExporter)(nil)

// ExportSpans implements sdktrace.SpanExporter.
func (e *SelfExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	byTenant := map[uuid.UUID][]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		tenant := e.Default
		for _, kv := range sp.Attributes() {
			if kv.Key == TenantKey {
				if id, err := uuid.Parse(kv.Value.AsString()); err == nil {
					tenant = id
				}
			}
		}
		if tenant != uuid.Nil {
			byTenant[tenant] = append(byTenant[tenant], sp)
		}
	}
	var errs []error
	for tenant, spans := range byTenant {
		b, err := e.Store.Decode(ctx, tenant, fromSDK(spans))
		if err == nil {
			err = e.Store.Write(ctx, tenant, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store the server's spans: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown implements sdktrace.SpanExporter.
func (e *SelfExporter) Shutdown(context.Context) error { return nil }

// fromSDK turns SDK spans into OTLP traces, one resource and scope each.
func fromSDK(spans []sdktrace.ReadOnlySpan) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, sp := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		if r := sp.Resource(); r != nil {
			putAttributes(rs.Resource().Attributes(), r.Attributes())
		}
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(sp.InstrumentationScope().Name)
		ss.Scope().SetVersion(sp.InstrumentationScope().Version)
		out := ss.Spans().AppendEmpty()
		sc := sp.SpanContext()
		out.SetTraceID(pcommon.TraceID(sc.TraceID()))
		out.SetSpanID(pcommon.SpanID(sc.SpanID()))
		out.TraceState().FromRaw(sc.TraceState().String())
		if p := sp.Parent(); p.IsValid() {
			out.SetParentSpanID(pcommon.SpanID(p.SpanID()))
		}
		out.SetName(sp.Name())
		out.SetKind(ptrace.SpanKind(sp.SpanKind()))
		out.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.StartTime()))
		out.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.EndTime()))
		attrs := sp.Attributes()
		kept := attrs[:0:0]
		for _, kv := range attrs {
			if kv.Key != TenantKey {
				kept = append(kept, kv)
			}
		}
		putAttributes(out.Attributes(), kept)
		for _, ev := range sp.Events() {
			e := out.Events().AppendEmpty()
			e.SetName(ev.Name)
			e.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
			putAttributes(e.Attributes(), ev.Attributes)
		}
		for _, l := range sp.Links() {
			ol := out.Links().AppendEmpty()
			ol.SetTraceID(pcommon.TraceID(l.SpanContext.TraceID()))
			ol.SetSpanID(pcommon.SpanID(l.SpanContext.SpanID()))
			putAttributes(ol.Attributes(), l.Attributes)
		}
		switch st := sp.Status(); st.Code {
		case 1: // codes.Error
			out.Status().SetCode(ptrace.StatusCodeError)
			out.Status().SetMessage(st.Description)
		case 2: // codes.Ok
			out.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
	return td
}

func putAttributes(m pcommon.Map, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			m.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			m.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			m.PutDouble(k, kv.Value.AsFloat64())
		case attribute.STRING:
			m.PutStr(k, kv.Value.AsString())
		default: // slices
			s := m.PutEmptySlice(k)
			for _, v := range kv.Value.AsStringSlice() {
				s.AppendEmpty().SetStr(v)
			}
		}
	}
}

// IDs makes the ids of the server's spans: random, except that a root
// span started with a context from WithIDs gets those ids, so work that
// spans restarts (a replay job) keeps one trace.
type IDs struct{}

type idsKey struct{}

type forcedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// WithIDs returns ctx in which a root span takes traceID and spanID.
func WithIDs(ctx context.Context, traceID trace.TraceID, spanID trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, forcedIDs{traceID, spanID})
}

// NewIDs implements sdktrace.IDGenerator.
func (IDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if f, ok := ctx.Value(idsKey{}).(forcedIDs); ok {
		return f.trace, f.span
	}
	var t trace.TraceID
	_, _ = rand.Read(t[:])
	return t, IDs{}.NewSpanID(ctx, t)
}

// NewSpanID implements sdktrace.IDGenerator.
func (IDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var s trace.SpanID
	_, _ = rand.Read(s[:])
	return s
}
