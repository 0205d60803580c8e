package database

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// queryTracer records a client span of each statement and batch run for a
// request whose span is recorded; for any other it costs one context
// lookup.
type queryTracer struct {
	tracer atomic.Pointer[trace.Tracer]
}

var (
	_ pgx.QueryTracer = (*queryTracer)(nil)
	_ pgx.BatchTracer = (*queryTracer)(nil)
)

// SetTracer records the spans of statements with t (nil: none).
func (db *DB) SetTracer(t trace.Tracer) {
	if t == nil {
		db.tracer.tracer.Store(nil)
		return
	}
	db.tracer.tracer.Store(&t)
}

// maxStatementText is how much of a statement a span keeps.
const maxStatementText = 2048

func (qt *queryTracer) start(ctx context.Context, name, sql string) context.Context {
	t := qt.tracer.Load()
	if t == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	if len(sql) > maxStatementText {
		sql = sql[:maxStatementText]
	}
	ctx, span := (*t).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.query.text", sql)))
	return context.WithValue(ctx, statementSpan{}, span)
}

// statementSpan keys the span start made, so end ends that one and never
// the request's.
type statementSpan struct{}

func end(ctx context.Context, err error) {
	span, ok := ctx.Value(statementSpan{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil && err != pgx.ErrNoRows {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// statementName is a span's name: the statement's first word.
func statementName(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexAny(sql, " \n\t("); i > 0 {
		sql = sql[:i]
	}
	return "db " + strings.ToUpper(sql)
}

func (qt *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return qt.start(ctx, statementName(data.SQL), data.SQL)
}

func (qt *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if qt.tracer.Load() != nil {
		end(ctx, data.Err)
	}
}

func (qt *queryTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if qt.tracer.Load() == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	var sb strings.Builder
	for i, q := range data.Batch.QueuedQueries {
		if i > 0 {
			sb.WriteString(";\n")
		}
		sb.WriteString(q.SQL)
		if sb.Len() > maxStatementText {
			break
		}
	}
	return qt.start(ctx, "db batch", sb.String())
}

func (qt *queryTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (qt *queryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	if qt.tracer.Load() != nil {
		end(ctx, data.Err)
	}
}
