package api_test

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkGet_Idle: one client, one request at a time, reading one team
// through the whole stack (routing, access log, metrics, bearer token,
// membership, authorization on the loaded team, one query, JSON). What is
// left of the latency beyond the query is our own overhead.
func BenchmarkGet_Idle(b *testing.B) {
	s, _, tok := benchTeams(b)
	url := s.URL + "/api/v1/tenants/bench/teams/team-042"
	client := &http.Client{}
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
