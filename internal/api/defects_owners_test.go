package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"

	"switchboard/internal/tenancy"
)

// defectCall is one request of a race.
type defectCall struct {
	method, path, token string
	body                any
}

// defectAnswer is what a racing request got.
type defectAnswer struct {
	status int
	body   string
}

// defectRace sends every call at once and returns their answers in order.
func defectRace(t *testing.T, s *testServer, calls ...defectCall) []defectAnswer {
	t.Helper()
	out := make([]defectAnswer, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range calls {
		var body io.Reader
		if c.body != nil {
			b, err := json.Marshal(c.body)
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.NewReader(b)
		}
		req, err := http.NewRequest(c.method, s.URL+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		if c.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		wg.Go(func() {
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				out[i] = defectAnswer{status: -1, body: err.Error()}
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			out[i] = defectAnswer{status: res.StatusCode, body: string(b)}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// defectOwners returns the emails of the tenant's owners, read in the database.
func defectOwners(t *testing.T, s *testServer, tenant string) []string {
	t.Helper()
	rows, err := s.DB.Pool.Query(t.Context(), `SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id JOIN tenants t ON t.id = m.tenant_id
		WHERE t.slug = $1 AND m.role = 'owner' ORDER BY u.email`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestDefect_LastOwnersRaceSafely: owners who demote or remove themselves
// or each other at the same moment are served one after another: the
// tenant always keeps an owner, the request that would leave none is a 409
// (never a 500), and exactly as many changes succeed as leave an owner.
func TestDefect_LastOwnersRaceSafely(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	emails := []string{"a@acme.test", "b@acme.test", "c@acme.test"}
	tok := map[string]string{emails[0]: s.signup(emails[0], "acme")}
	id := map[string]string{}
	for _, e := range emails[1:] {
		tok[e] = s.member(tok[emails[0]], "acme", e, tenancy.Owner)
	}
	for _, e := range emails {
		id[e] = defectUserID(s, tok[e])
	}
	members := "/api/v1/tenants/acme/members/"
	demote := func(who, whom string) defectCall {
		return defectCall{"PATCH", members + id[whom], tok[who], map[string]string{"role": "admin"}}
	}
	remove := func(who, whom string) defectCall { return defectCall{"DELETE", members + id[whom], tok[who], nil} }
	// restore makes every one of emails[:n] an owner again, through the
	// owner that is left.
	restore := func(t *testing.T, n int) {
		t.Helper()
		left := defectOwners(t, s, "acme")
		if len(left) == 0 {
			t.Fatal("the tenant has no owner left")
		}
		by := tok[left[0]]
		for _, e := range emails[:n] {
			switch r := s.do("PATCH", members+id[e], by, map[string]string{"role": "owner"}); r.Status {
			case 200:
			case 404: // removed: add again (a verified address joins at once)
				s.must(201, "POST", "/api/v1/tenants/acme/members", by, map[string]string{"email": e, "role": "owner"})
			default:
				t.Fatalf("restore %s: %d %s", e, r.Status, r.Body)
			}
		}
		if got := defectOwners(t, s, "acme"); len(got) != n {
			t.Fatalf("after restoring: owners %v", got)
		}
	}
	// outcome checks a race: wins answers of a success status, every other
	// answer a 409 or one of also, no 5xx, and an owner left.
	outcome := func(t *testing.T, what string, wins int, success []int, answers []defectAnswer, also ...int) {
		t.Helper()
		won := 0
		for _, a := range answers {
			ok := a.status == 409
			for _, s := range also {
				ok = ok || a.status == s
			}
			switch {
			case slices.Contains(success, a.status):
				won++
			case !ok:
				t.Errorf("%s: an answer %d %s, want one of %v, or 409 or %v", what, a.status, a.body, success, also)
			}
		}
		if won != wins {
			t.Errorf("%s: %d of %d succeeded, want %d: %v", what, won, len(answers), wins, answers)
		}
		if left := defectOwners(t, s, "acme"); len(left) == 0 {
			t.Fatalf("%s: the tenant has no owner left", what)
		}
	}

	a, b, c := emails[0], emails[1], emails[2]
	s.must(200, "PATCH", members+id[c], tok[a], map[string]string{"role": "admin"}) // two owners to start with
	for round := range 8 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			outcome(t, "both demote themselves", 1, []int{200}, defectRace(t, s, demote(a, a), demote(b, b)))
			restore(t, 2)
			// The loser was demoted first: as an admin it may not touch an owner (403).
			outcome(t, "they demote each other", 1, []int{200}, defectRace(t, s, demote(a, b), demote(b, a)), 403)
			restore(t, 2)
			outcome(t, "both leave", 1, []int{204}, defectRace(t, s, remove(a, a), remove(b, b)))
			restore(t, 2)
			// The loser was removed first: it is no member any more (404) or
			// its credential is refused (401).
			outcome(t, "they remove each other", 1, []int{204}, defectRace(t, s, remove(a, b), remove(b, a)), 401, 403, 404)
			restore(t, 2)
			outcome(t, "one leaves as the other steps down", 1, []int{200, 204}, defectRace(t, s, remove(a, a), demote(b, b)))
			restore(t, 3)
			answers := defectRace(t, s, demote(a, a), demote(b, b), demote(c, c))
			outcome(t, "three demote themselves", 2, []int{200}, answers)
			if left := defectOwners(t, s, "acme"); len(left) != 1 {
				t.Errorf("three owners demoting themselves left %v", left)
			}
			restore(t, 3)
			s.must(200, "PATCH", members+id[c], tok[a], map[string]string{"role": "admin"})
		})
	}
	got := defectOwners(t, s, "acme")
	sort.Strings(got)
	if len(got) != 2 {
		t.Fatalf("owners at the end: %v", got)
	}
}
