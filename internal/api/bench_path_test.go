package api_test

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkGet_Idle: one client, one request at a time, through the whole
// stack (routing, access log, metrics, bearer token, membership,
// authorization, JSON): the tenant and the caller's role in it, which
// needs nothing but memory, and one team, which adds one PostgreSQL round
// trip (scope and query in one pipeline) and authorization on the loaded
// team.
func BenchmarkGet_Idle(b *testing.B) {
	s, _, tok := benchTeams(b)
	b.Run("tenant", func(b *testing.B) { idleGets(b, s.URL+"/api/v1/tenants/bench", tok) })
	b.Run("team", func(b *testing.B) { idleGets(b, s.URL+"/api/v1/tenants/bench/teams/team-042", tok) })
}

func idleGets(b *testing.B, url, tok string) {
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for range 500 { // connections, statements and caches warm, as on a running server
		if _, err := get(client, url, tok); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d, err := get(client, url, tok)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}
