package api

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"switchboard/internal/auth"
	"switchboard/internal/live"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tracing"
	"switchboard/internal/web"
)

// OTLP/HTTP bounds: a request body as sent (compressed or not) and as
// decompressed. A body over either is refused with 413, read no further.
const (
	MaxOTLPBody         = 8 << 20
	MaxOTLPDecompressed = 32 << 20
)

// ingestWait is how long an OTLP request waits for the ingest to take it
// before it is told to retry.
const ingestWait = 2 * time.Second

// OTLPTracesPath is where OTLP/HTTP exporters send traces.
const OTLPTracesPath = web.OTLPTracesPath

func (a *API) traceRoutes() []route {
	t := v1 + "/tenants/:tenant"
	search := []queryParam{{"service", "string", "spans of this service (its service.name)"}, {"operation", "string", "spans of this name"},
		{"status", "string", "unset, ok or error"}, {"min_duration", "string", "spans lasting at least this (250ms, 2s)"},
		{"max_duration", "string", "spans lasting at most this"}, {"attr", "string", "key=value: a span attribute whose value, as text, is value (repeat for several)"}}
	window := []queryParam{{"since", "string", "spans starting at or after this RFC 3339 time (default: an hour ago)"},
		{"until", "string", "spans starting before this RFC 3339 time (default: now)"}}
	return []route{
		{Method: http.MethodPost, Path: OTLPTracesPath, Summary: "OTLP/HTTP trace ingest (protobuf or JSON, optionally gzip): an API token with the ingest permission; " +
			"the answer is an OTLP ExportTraceServiceResponse, with the spans rejected and why as partial success; errors are OTLP Status messages",
			Tag: "tracing", Auth: authIngest, Status: 200, handler: a.ingestTraces},
		{Method: http.MethodGet, Path: t + "/traces", Summary: "Traces with a span matching the search, newest matching spans first", Tag: "tracing", Auth: authTenant,
			Response: List[tracing.Trace]{}, Status: 200, Paged: true, Query: append(search, window...), handler: a.searchTraces},
		{Method: http.MethodGet, Path: t + "/traces/live", Summary: "Spans as they arrive, filtered as a search is (WebSocket); a client that falls behind skips batches and is told how many spans it skipped",
			Tag: "tracing", Auth: authTenantStream, Response: TailMessage{}, Status: 101, Query: search, handler: a.traceLive},
		{Method: http.MethodGet, Path: t + "/traces/:trace_id", Summary: "Every span of a trace (32 hex digits), by start time, with events and links", Tag: "tracing", Auth: authTenant,
			Response: TraceResponse{}, Status: 200, handler: a.getTrace},
		{Method: http.MethodGet, Path: t + "/trace-services", Summary: "The services that sent spans", Tag: "tracing", Auth: authTenant,
			Response: List[tracing.Service]{}, Status: 200, handler: a.traceServices},
		{Method: http.MethodGet, Path: t + "/trace-services/:service/operations", Summary: "A service's operations (span names by kind)", Tag: "tracing", Auth: authTenant,
			Response: List[tracing.Operation]{}, Status: 200, handler: a.traceOperations},
		{Method: http.MethodGet, Path: t + "/trace-stats", Summary: "Rate, errors and duration (p50, p99) per service, per operation and per edge (calls, publishes, consumes) over a window",
			Tag: "tracing", Auth: authTenant, Response: tracing.Stats{}, Status: 200, Query: window, handler: a.traceStats},
		{Method: http.MethodGet, Path: t + "/tracing", Summary: "The tenant's tracing settings (retention)", Tag: "tracing", Auth: authTenant,
			Response: tracing.Settings{}, Status: 200, handler: a.getTracingSettings},
		{Method: http.MethodPut, Path: t + "/tracing", Summary: "Change the tenant's tracing settings: retention_days (1 to 90) applies to spans that arrive after it", Tag: "tracing", Auth: authTenant,
			Request: tracing.Settings{}, Response: tracing.Settings{}, Status: 200, handler: a.putTracingSettings},
	}
}

// TraceResponse is a trace's spans.
type TraceResponse struct {
	TraceID string         `json:"trace_id"`
	Spans   []tracing.Span `json:"spans"`
}

// TailMessage is the data of a live tail's "spans" message.
type TailMessage struct {
	// Spans are spans as they arrived, without resource, events and links.
	Spans []tracing.LiveSpan `json:"spans"`
	// Skipped is how many spans matching the filter were not sent since the
	// last message because the client fell behind.
	Skipped int64 `json:"skipped,omitempty"`
}

// otlpFormat is an OTLP/HTTP request's encoding.
type otlpFormat int

const (
	otlpProto otlpFormat = iota
	otlpJSON
)

func (f otlpFormat) contentType() string {
	if f == otlpJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// otlpError answers an OTLP/HTTP request with a google.rpc.Status in the
// request's encoding, as OTLP asks.
func otlpError(c echo.Context, f otlpFormat, status int, msg string, retryAfter int) error {
	code := map[int]int32{http.StatusBadRequest: 3, http.StatusUnauthorized: 16, http.StatusForbidden: 7, http.StatusRequestEntityTooLarge: 3,
		http.StatusUnsupportedMediaType: 3, http.StatusTooManyRequests: 8, http.StatusServiceUnavailable: 14}[status]
	if code == 0 {
		code = 13 // internal
	}
	if retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if f == otlpJSON {
		b, _ := json.Marshal(map[string]any{"code": code, "message": msg})
		return c.Blob(status, f.contentType(), b)
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(code))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	return c.Blob(status, f.contentType(), b)
}

// otlpProblem answers err (a problem, or not) as an OTLP Status.
func (a *API) otlpProblem(c echo.Context, f otlpFormat, err error) error {
	p, ok := problem.As(err)
	if !ok {
		a.log.ErrorContext(c.Request().Context(), "ingest spans", "err", err)
		return otlpError(c, f, http.StatusServiceUnavailable, "the spans could not be stored; retry", 1)
	}
	status := map[string]int{problem.CodeInvalid: 400, problem.CodeUnauthenticated: 401, problem.CodeForbidden: 403, problem.CodeNotFound: 401,
		problem.CodeTooLarge: 413, problem.CodeUnsupported: 415, problem.CodeRateLimited: 429, problem.CodeUnavailable: 503}[p.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return otlpError(c, f, status, p.Message, p.RetryAfter)
}

// ingestTraces is OTLP/HTTP's trace export: authenticated by an API token
// with the ingest permission (its tenant is the spans' tenant), decoded
// with pdata, stored in one COPY.
func (a *API) ingestTraces(c echo.Context) error {
	req := c.Request()
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	f := otlpProto
	switch mt {
	case "application/x-protobuf", "application/protobuf":
	case "application/json":
		f = otlpJSON
	default:
		return otlpError(c, f, http.StatusUnsupportedMediaType, "send OTLP as application/x-protobuf or application/json", 0)
	}
	ctx := req.Context()
	p, err := a.ingestPrincipal(ctx, web.Bearer(c))
	if err != nil {
		if pe, ok := problem.As(err); ok && pe.Code == problem.CodeUnauthenticated {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		}
		return a.otlpProblem(c, f, err)
	}
	if !a.ingest.Acquire(ctx, ingestWait) {
		return a.otlpProblem(c, f, errIngestBusy)
	}
	defer a.ingest.Release()
	body, err := readOTLPBody(req)
	if err != nil {
		return a.otlpProblem(c, f, err)
	}
	er := ptraceotlp.NewExportRequest()
	if f == otlpJSON {
		err = er.UnmarshalJSON(body)
	} else {
		err = er.UnmarshalProto(body)
	}
	if err != nil {
		return otlpError(c, f, http.StatusBadRequest, "the body is not an OTLP ExportTraceServiceRequest: "+err.Error(), 0)
	}
	resp, err := a.storeSpans(ctx, p, er)
	if err != nil {
		return a.otlpProblem(c, f, err)
	}
	var out []byte
	if f == otlpJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		return a.otlpProblem(c, f, err)
	}
	return c.Blob(http.StatusOK, f.contentType(), out)
}

// errIngestBusy answers an ingest that found no free slot in time.
var errIngestBusy = &problem.Error{Code: problem.CodeRateLimited, Message: "the server is taking in as many spans as it can; retry after a second", RetryAfter: 1}

// storeSpans stores an OTLP request's spans for p's tenant, within its
// rate, and answers with the spans rejected, as OTLP's partial success.
// The caller holds an ingest slot.
func (a *API) storeSpans(ctx context.Context, p auth.Principal, er ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	if n := er.Traces().SpanCount(); n > 0 {
		if wait, ok := a.ingest.Allow(p.Tenant, n); !ok {
			return resp, &problem.Error{Code: problem.CodeRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("this tenant sends spans faster than its limit of %d a second", a.ingest.PerSecond)}
		}
	}
	b, err := a.traces.Decode(ctx, p.Tenant, er.Traces())
	if err != nil {
		return resp, err
	}
	if err := a.traces.Write(ctx, p.Tenant, b); err != nil {
		return resp, err
	}
	if b.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(b.Rejected))
		resp.PartialSuccess().SetErrorMessage(b.Message())
	}
	return resp, nil
}

// ingestPrincipal authenticates an ingest: an API token (spans go to its
// tenant) whose role may ingest traces.
func (a *API) ingestPrincipal(ctx context.Context, tok string) (auth.Principal, error) {
	if tok == "" {
		return auth.Principal{}, problem.Errorf(problem.CodeUnauthenticated, "send an API token with the ingest permission as Authorization: Bearer <token>")
	}
	id, err := a.auth.Authenticate(ctx, tok)
	if err != nil {
		return auth.Principal{}, err
	}
	if id.Token == nil {
		return auth.Principal{}, problem.Errorf(problem.CodeUnauthenticated, "spans are sent with an API token (it names the tenant), not a sign-in token")
	}
	p, err := a.auth.Scope(ctx, id, id.Token.Tenant.Slug)
	if err != nil {
		return auth.Principal{}, err
	}
	if err := a.rbac.Authorize(ctx, p, rbac.Ingest, rbac.Of(p, "trace", "")); err != nil {
		return auth.Principal{}, err
	}
	return p, nil
}

// readOTLPBody reads the request body within the bounds, decompressing
// gzip.
func readOTLPBody(req *http.Request) ([]byte, error) {
	var r io.Reader = http.MaxBytesReader(nil, req.Body, MaxOTLPBody)
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, tooLargeOr(err, problem.Errorf(problem.CodeInvalid, "the body is not gzip: %v", err))
		}
		defer zr.Close()
		r = zr
	default:
		return nil, problem.Errorf(problem.CodeUnsupported, "Content-Encoding %q is not taken: send gzip or nothing", enc)
	}
	body, err := io.ReadAll(io.LimitReader(r, MaxOTLPDecompressed+1))
	if err != nil {
		return nil, tooLargeOr(err, problem.Errorf(problem.CodeInvalid, "the body could not be read: %v", err))
	}
	if len(body) > MaxOTLPDecompressed {
		return nil, problem.Errorf(problem.CodeTooLarge, "a request is at most %d bytes decompressed", MaxOTLPDecompressed)
	}
	return body, nil
}

func tooLargeOr(err error, otherwise error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return problem.Errorf(problem.CodeTooLarge, "a request body is at most %d bytes as sent", MaxOTLPBody)
	}
	return otherwise
}

// mayTraces authorizes act on the tenant's traces for the caller.
func (a *API) mayTraces(c echo.Context, act string) (auth.Principal, error) {
	p := principal(c)
	return p, a.rbac.Authorize(c.Request().Context(), p, act, rbac.Of(p, "trace", ""))
}

func (a *API) searchTraces(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	q, err := tracing.ParseQuery(c.QueryParams())
	if err != nil {
		return err
	}
	ts, next, err := a.traces.Search(c.Request().Context(), p.Tenant, q, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ts, next))
}

func (a *API) getTrace(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	id := strings.ToLower(c.Param("trace_id"))
	spans, err := a.traces.Trace(c.Request().Context(), p.Tenant, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TraceResponse{TraceID: id, Spans: spans})
}

func (a *API) traceServices(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	ss, err := a.traces.Services(c.Request().Context(), p.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ss, ""))
}

func (a *API) traceOperations(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	ops, err := a.traces.Operations(c.Request().Context(), p.Tenant, c.Param("service"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ops, ""))
}

func (a *API) traceStats(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	q, err := tracing.ParseQuery(c.QueryParams())
	if err != nil {
		return err
	}
	now := time.Now()
	if q.Until.IsZero() {
		q.Until = now
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-time.Hour)
	}
	st, err := a.traces.Stats(c.Request().Context(), p.Tenant, q.Since, q.Until)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (a *API) getTracingSettings(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Read)
	if err != nil {
		return err
	}
	set, err := a.traces.Settings(c.Request().Context(), p.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}

func (a *API) putTracingSettings(c echo.Context) error {
	p, err := a.mayTraces(c, rbac.Update)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var in tracing.Settings
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	set, err := a.traces.SetSettings(ctx, p.Tenant, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}

// traceLive streams spans as they are stored, filtered. Spans travel in
// batches as they arrived; a client that falls behind skips batches and
// the next message says how many spans it skipped.
func (a *API) traceLive(c echo.Context) error {
	p := principal(c)
	q, err := tracing.ParseQuery(c.QueryParams())
	if err != nil {
		return err
	}
	f := q.Filter()
	if err := f.Validate(); err != nil {
		return err
	}
	return a.live.Serve(c, live.Stream{Kind: "traces", Action: rbac.Read, Object: rbac.Of(p, "trace", ""),
		Open: func(ctx context.Context, _ live.Resume) (live.Source, error) {
			return tailSource(ctx, a.traces.Tail, p, f), nil
		}})
}

// tailSource feeds a live stream from a tail subscription. It sends one
// message per batch; while the connection is busy writing, batches wait in
// the subscription's buffer and, once that is full, are skipped and
// counted.
func tailSource(ctx context.Context, t *tracing.Tail, p auth.Principal, f tracing.Filter) live.Source {
	sub := t.Subscribe(p.Tenant, f)
	out := make(chan live.Message)
	done := make(chan struct{})
	go func() {
		defer close(out)
		var seq uint64
		for {
			var batch [][]byte
			select {
			case batch = <-sub.C:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
			seq++
			m := live.Message{Type: "spans", Seq: seq, Data: live.Encoded(tailJSON(batch, sub.TakeSkipped()))}
			select {
			case out <- m:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	var once bool
	return live.Source{C: out, Err: func() error { return nil }, Close: func() {
		if !once {
			once = true
			close(done)
			t.Unsubscribe(p.Tenant, sub)
		}
	}}
}

func tailJSON(batch [][]byte, skipped int64) []byte {
	n := 32
	for _, s := range batch {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"spans":[`...)
	for i, s := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	b = append(b, ']')
	if skipped > 0 {
		b = append(b, `,"skipped":`...)
		b = strconv.AppendInt(b, skipped, 10)
	}
	return append(b, '}')
}

// otlpContent documents an OTLP message in both encodings.
func otlpContent(desc string) object {
	return object{
		"application/x-protobuf": object{"schema": object{"type": "string", "format": "binary", "description": desc}},
		"application/json":       object{"schema": object{"type": "object", "description": desc + " (OTLP's JSON encoding)"}},
	}
}

// otlpStatusResponse documents an OTLP error answer: a google.rpc.Status.
func otlpStatusResponse(desc string, header ...string) object {
	r := object{"description": desc, "content": object{
		"application/x-protobuf": object{"schema": object{"type": "string", "format": "binary", "description": "A google.rpc.Status"}},
		"application/json": object{"schema": object{"type": "object", "description": "A google.rpc.Status",
			"properties": object{"code": object{"type": "integer"}, "message": object{"type": "string"}}}},
	}}
	if len(header) == 2 {
		r["headers"] = object{header[0]: object{"description": header[1], "schema": object{"type": "integer"}}}
	}
	return r
}
