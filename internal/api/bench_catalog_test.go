package api_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"switchboard/internal/catalog"
	"switchboard/internal/catalog/backstage"
)

// benchCatalog builds the tenant: 5,000 entities (services,
// queues, topics, over 20 teams) and 20,000 relations between them.
func benchCatalog(n, rels int) ([]catalog.Entity, []catalog.Relation) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []string{catalog.KindService, catalog.KindQueue, catalog.KindTopic}
	ents := make([]catalog.Entity, 0, n)
	refs := make([]string, 0, n)
	for i := range n {
		e := catalog.Entity{Kind: kinds[i%3], Name: fmt.Sprintf("e-%05d", i), OwnerTeam: fmt.Sprintf("team-%02d", i%20),
			Labels: map[string]string{"env": []string{"prod", "dev"}[i%2]}}
		switch e.Kind {
		case catalog.KindQueue:
			e.Queue = &catalog.QueueSpec{Broker: "rabbit"}
		case catalog.KindTopic:
			e.Topic = &catalog.TopicSpec{Broker: "kafka", Partitions: 3}
		}
		ents = append(ents, e)
		refs = append(refs, e.Ref().String())
	}
	types := []string{catalog.Calls, catalog.Publishes, catalog.Consumes, catalog.DependsOn}
	seen := map[catalog.Relation]bool{}
	out := make([]catalog.Relation, 0, rels)
	for len(out) < rels {
		r := catalog.Relation{From: refs[rng.IntN(n)], Type: types[rng.IntN(len(types))], To: refs[rng.IntN(n)]}
		if r.From == r.To || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return ents, out
}

// BenchmarkCatalog: importing a catalog file of 5,000 entities and 20,000
// relations through the API (once, import-ms), then GET .../topology of all of it, one
// request at a time (p50, p99).
func BenchmarkCatalog(b *testing.B) {
	s := newTestServer(b)
	tok := s.signup("bench@example.com", "bench")
	for i := range 20 {
		s.must(201, "POST", "/api/v1/tenants/bench/teams", tok, map[string]string{"slug": fmt.Sprintf("team-%02d", i), "name": "Team"})
	}
	ents, rels := benchCatalog(5000, 20000)
	file, err := backstage.Export(ents, rels)
	if err != nil {
		b.Fatal(err)
	}
	// The whole file through the API: read, checked, applied.
	start := time.Now()
	r := s.must(200, "POST", "/api/v1/tenants/bench/catalog/import?source=bench", tok, yamlBody(file))
	importMS := float64(time.Since(start).Microseconds()) / 1000
	var res catalog.ImportResult
	r.json(b, &res)
	if len(res.Created) != 5000 || res.Relations != 20000 {
		b.Fatalf("imported %d entities and %d relations", len(res.Created), res.Relations)
	}
	url := s.URL + "/api/v1/tenants/bench/topology"
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for range 3 {
		if _, err := get(client, url, tok); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
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
	b.ReportMetric(importMS, "import-ms")
}
