package api_test

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"switchboard/internal/api"
)

// The tracing rows of the authorization matrix: every member reads traces;
// the settings are for admins and up.
func init() {
	stateSQL["tracing_settings"] = `SELECT coalesce(string_agg(tenant_id::text || ':' || retention_days, ',' ORDER BY tenant_id), '') FROM tracing_settings`
	all := [7]int{200, 200, 200, 200, 200, 200, 200}
	withTrace := func(rest func(trace string) string) func(s *testServer, f *authzFixture, tenant string) cell {
		return func(s *testServer, f *authzFixture, tenant string) cell {
			return cell{tenantPath(tenant, rest(f.newTrace(s, tenant))), nil}
		}
	}
	matrix = append(matrix,
		matrixRow{"GET", "/traces", all, fixed("/traces", nil)},
		matrixRow{"GET", "/traces/:trace_id", all, withTrace(func(id string) string { return "/traces/" + id })},
		matrixRow{"GET", "/traces/live", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/traces/live", nil)},
		matrixRow{"GET", "/trace-services", all, fixed("/trace-services", nil)},
		matrixRow{"GET", "/trace-services/:service/operations", all, withTrace(func(string) string { return "/trace-services/cell-svc/operations" })},
		matrixRow{"GET", "/trace-stats", all, fixed("/trace-stats", nil)},
		matrixRow{"GET", "/tracing", all, fixed("/tracing", nil)},
		matrixRow{"PUT", "/tracing", [7]int{200, 200, 403, 403, 403, 403, 200}, fixed("/tracing", map[string]any{"retention_days": 3})},
	)
}

// newTrace sends one span of service cell-svc to tenant over OTLP, with an
// editor's API token, and returns its trace id.
func (f *authzFixture) newTrace(s *testServer, tenant string) string {
	s.t.Helper()
	var tok api.CreateTokenResponse
	s.must(201, "POST", tenantPath(tenant, "/tokens"), f.owner[tenant], map[string]string{"name": "ingest", "role": "editor"}).json(s.t, &tok)
	n := f.next()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "cell-svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	id := pcommon.TraceID{0xce, 0x11, byte(n >> 8), byte(n)}
	sp.SetTraceID(id)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("cell")
	now := pcommon.NewTimestampFromTime(time.Now())
	sp.SetStartTimestamp(now)
	sp.SetEndTimestamp(now)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		s.t.Fatal(err)
	}
	s.must(200, "POST", "/v1/traces", tok.Token, body, "Content-Type", "application/json")
	return fmt.Sprintf("%x", id[:])
}
