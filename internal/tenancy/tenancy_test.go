package tenancy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	t   *testing.T
	db  *database.DB
	s   *tenancy.Store
	ctx context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := dbtest.New(t)
	return &fixture{t: t, db: db, s: tenancy.New(db), ctx: t.Context()}
}

// user creates a user, verified or not.
func (f *fixture) user(email string, verified bool) tenancy.User {
	f.t.Helper()
	var u tenancy.User
	err := pgx.BeginFunc(f.ctx, f.db.Pool, func(tx pgx.Tx) error {
		var created bool
		var err error
		if u, created, err = tenancy.InsertUserTx(f.ctx, tx, email, "Name of "+email, "$argon2id$not-a-real-hash"); err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("%s exists", email)
		}
		if verified {
			u, _, err = tenancy.VerifyUserTx(f.ctx, tx, u.ID, u.Email)
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) verify(u tenancy.User) []tenancy.Tenant {
	f.t.Helper()
	var joined []tenancy.Tenant
	ctx := audit.WithActor(f.ctx, audit.Actor{ID: u.ID, Name: u.Email})
	err := pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
		var err error
		_, joined, err = tenancy.VerifyUserTx(ctx, tx, u.ID, u.Email)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return joined
}

func (f *fixture) tenant(owner tenancy.User, slug string) tenancy.Tenant {
	f.t.Helper()
	t, err := f.s.CreateTenant(f.ctx, owner.ID, slug, "Org "+slug)
	if err != nil {
		f.t.Fatal(err)
	}
	return t
}

func (f *fixture) role(t tenancy.Tenant, u tenancy.User) tenancy.Role {
	f.t.Helper()
	m, err := f.s.Membership(f.ctx, u.ID, t.Slug)
	if problem.Code(err) == problem.CodeNotFound {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Role
}

func owner(u tenancy.User) tenancy.Granter { return tenancy.Granter{UserID: u.ID, Role: tenancy.Owner} }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if problem.Code(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

// auditActions returns the tenant's audit actions, oldest first.
func (f *fixture) audit(t tenancy.Tenant) []audit.Entry {
	f.t.Helper()
	es, _, err := audit.NewLog(f.db).List(f.ctx, t.ID, "", 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

func (f *fixture) lastAudit(t tenancy.Tenant) audit.Entry {
	f.t.Helper()
	es := f.audit(t)
	return es[len(es)-1]
}

func TestRole_Meet(t *testing.T) {
	for _, tc := range []struct{ a, b, want tenancy.Role }{
		{tenancy.Owner, tenancy.Admin, tenancy.Admin},
		{tenancy.Viewer, tenancy.Owner, tenancy.Viewer},
		{tenancy.Editor, tenancy.Editor, tenancy.Editor},
		{tenancy.Admin, tenancy.Operator, tenancy.Operator},
		{tenancy.Editor, tenancy.Operator, tenancy.Viewer}, // peers in different domains
		{tenancy.Operator, tenancy.Editor, tenancy.Viewer},
		{tenancy.Owner, "root", ""},
	} {
		if got := tc.a.Meet(tc.b); got != tc.want {
			t.Errorf("%s meet %s = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
	if tenancy.Operator.Covers(tenancy.Editor) || !tenancy.Admin.Covers(tenancy.Editor) || !tenancy.Editor.Covers(tenancy.Viewer) {
		t.Fatal("Covers disagrees with Meet")
	}
}

func TestAddMember_VerifiedUserJoinsAtOnce(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	bob := f.user("bob@example.com", true)
	acme := f.tenant(ada, "acme")
	m, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "Bob@Example.com", tenancy.Editor)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != tenancy.Active || m.UserID != bob.ID || m.JoinedAt.IsZero() || !m.InvitedAt.IsZero() {
		t.Fatalf("member %+v, want bob active with a join time", m)
	}
	if r := f.role(acme, bob); r != tenancy.Editor {
		t.Fatalf("bob's role %q", r)
	}
	if a := f.lastAudit(acme); a.Action != "member.added" {
		t.Fatalf("audit %s", a.Action)
	}
	_, err = f.s.AddMember(f.ctx, acme.ID, owner(ada), "bob@example.com", tenancy.Viewer)
	wantCode(t, err, problem.CodeConflict)
}

// TestAddMember_UnknownAddressIsInvited: an address with no account is
// invited; the invitation is no member (no user, name or join time), and
// whoever signs up with the address gets nothing until they verify it.
func TestAddMember_UnknownAddressIsInvited(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	acme := f.tenant(ada, "acme")
	m, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "carol@example.com", tenancy.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != tenancy.Invited || m.UserID != uuid.Nil || m.Name != "" || !m.JoinedAt.IsZero() || m.InvitedAt.IsZero() {
		t.Fatalf("invitation %+v looks like a member", m)
	}
	b, _ := json.Marshal(m)
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	for _, k := range []string{"user_id", "name", "joined_at"} {
		if _, ok := fields[k]; ok {
			t.Errorf("invitation JSON has %q: %s", k, b)
		}
	}
	if fields["status"] != "invited" || fields["invited_at"] == nil {
		t.Errorf("invitation JSON %s", b)
	}
	members, _, err := f.s.ListMembers(f.ctx, acme.ID, "", 50)
	if err != nil || len(members) != 1 || members[0].Email != "ada@example.com" || members[0].Status != tenancy.Active {
		t.Fatalf("members %+v %v: want only ada", members, err)
	}
	invs, _, err := f.s.ListInvitations(f.ctx, acme.ID, "", 50)
	if err != nil || len(invs) != 1 || invs[0].Email != "carol@example.com" || invs[0].Role != tenancy.Admin || invs[0].Status != tenancy.Invited {
		t.Fatalf("invitations %+v %v", invs, err)
	}
	a := f.lastAudit(acme)
	if a.Action != "member.invited" || a.ObjectID != "carol@example.com" {
		t.Fatalf("audit %s %s", a.Action, a.ObjectID)
	}
	_, err = f.s.AddMember(f.ctx, acme.ID, owner(ada), "carol@example.com", tenancy.Viewer)
	wantCode(t, err, problem.CodeConflict)

	// Someone signs up with carol's address: not a member yet.
	carol := f.user("carol@example.com", false)
	if r := f.role(acme, carol); r != "" {
		t.Fatalf("unverified carol is %s of acme", r)
	}
	// Proving the address claims the invitation.
	joined := f.verify(carol)
	if len(joined) != 1 || joined[0].Slug != "acme" {
		t.Fatalf("joined %+v", joined)
	}
	if r := f.role(acme, carol); r != tenancy.Admin {
		t.Fatalf("verified carol's role %q, want admin", r)
	}
	if invs, _, _ := f.s.ListInvitations(f.ctx, acme.ID, "", 50); len(invs) != 0 {
		t.Fatalf("invitation left after joining: %+v", invs)
	}
	a = f.lastAudit(acme)
	if a.Action != "member.joined" || a.ActorID == nil || *a.ActorID != carol.ID {
		t.Fatalf("audit %s by %v, want member.joined by carol", a.Action, a.ActorID)
	}
}

func TestAddMember_UnverifiedUserIsInvited(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	dan := f.user("dan@example.com", false)
	acme := f.tenant(ada, "acme")
	m, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "dan@example.com", tenancy.Viewer)
	if err != nil || m.Status != tenancy.Invited {
		t.Fatalf("%+v %v: want an invitation", m, err)
	}
	if r := f.role(acme, dan); r != "" {
		t.Fatalf("unverified dan became %s", r)
	}
	// An unverified user who is already a member (his own tenant) is a
	// conflict, not an invitation.
	own := f.tenant(dan, "dans")
	_, err = f.s.AddMember(f.ctx, own.ID, owner(dan), "dan@example.com", tenancy.Viewer)
	wantCode(t, err, problem.CodeConflict)
}

func TestVerify_ClaimsInvitationsOfEveryTenant(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	a, b, c := f.tenant(ada, "a"), f.tenant(ada, "b"), f.tenant(ada, "c")
	for _, x := range []tenancy.Tenant{a, b} {
		if _, err := f.s.AddMember(f.ctx, x.ID, owner(ada), "eve@example.com", tenancy.Operator); err != nil {
			t.Fatal(err)
		}
	}
	eve := f.user("eve@example.com", false)
	if joined := f.verify(eve); len(joined) != 2 {
		t.Fatalf("joined %+v, want a and b", joined)
	}
	if f.role(a, eve) != tenancy.Operator || f.role(b, eve) != tenancy.Operator || f.role(c, eve) != "" {
		t.Fatal("roles after verification are wrong")
	}
	// Verifying again joins nothing more and is no error.
	if joined := f.verify(eve); len(joined) != 0 {
		t.Fatalf("second verification joined %+v", joined)
	}
}

func TestCancelInvitation(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	vic := f.user("vic@example.com", true)
	acme := f.tenant(ada, "acme")
	if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "vic@example.com", tenancy.Admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "fay@example.com", tenancy.Admin); err != nil {
		t.Fatal(err)
	}
	// An admin may not cancel an owner's invitation; vic is an admin.
	if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "gus@example.com", tenancy.Owner); err != nil {
		t.Fatal(err)
	}
	err := f.s.CancelInvitation(f.ctx, acme.ID, tenancy.Granter{UserID: vic.ID, Role: tenancy.Admin}, "gus@example.com")
	wantCode(t, err, problem.CodeForbidden)

	if err := f.s.CancelInvitation(f.ctx, acme.ID, owner(ada), "FAY@example.com"); err != nil {
		t.Fatal(err)
	}
	if a := f.lastAudit(acme); a.Action != "invitation.cancelled" || a.ObjectID != "fay@example.com" {
		t.Fatalf("audit %s %s", a.Action, a.ObjectID)
	}
	wantCode(t, f.s.CancelInvitation(f.ctx, acme.ID, owner(ada), "fay@example.com"), problem.CodeNotFound)
	fay := f.user("fay@example.com", false)
	if joined := f.verify(fay); len(joined) != 0 || f.role(acme, fay) != "" {
		t.Fatal("a cancelled invitation was claimed")
	}
}

func TestTeams_OnlyActiveMembersJoin(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	acme := f.tenant(ada, "acme")
	if _, err := f.s.CreateTeam(f.ctx, acme.ID, "core", "Core"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "ivy@example.com", tenancy.Editor); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.AddTeamMember(f.ctx, acme.ID, "core", "ivy@example.com", allowAll)
	wantCode(t, err, problem.CodeNotFound)
}

// TestInvitations_RowLevelSecurity: the invitations table is behind the
// same policy as the other tenant tables.
func TestInvitations_RowLevelSecurity(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	a, b := f.tenant(ada, "a"), f.tenant(ada, "b")
	if _, err := f.s.AddMember(f.ctx, a.ID, owner(ada), "x@example.com", tenancy.Viewer); err != nil {
		t.Fatal(err)
	}
	count := func(tenant uuid.UUID) int {
		n := 0
		// No tenant filter on purpose: only row-level security limits it.
		if err := f.db.ReadTenant(f.ctx, tenant, `SELECT count(*) FROM invitations`, nil, func(r pgx.Rows) error { return r.Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(a.ID) != 1 || count(b.ID) != 0 {
		t.Fatalf("tenant a sees %d, tenant b sees %d; want 1 and 0", count(a.ID), count(b.ID))
	}
	err := f.db.InTenant(f.ctx, b.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(f.ctx, `INSERT INTO invitations (tenant_id, email, role) VALUES ($1, 'y@example.com', 'owner')`, a.ID)
		return err
	})
	if err == nil {
		t.Fatal("tenant b wrote an invitation into tenant a")
	}
}

func TestLastOwner_CannotLeaveOrBeDemoted(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	acme := f.tenant(ada, "acme")
	_, err := f.s.SetMemberRole(f.ctx, acme.ID, owner(ada), ada.ID, tenancy.Admin)
	wantCode(t, err, problem.CodeConflict)
	wantCode(t, f.s.RemoveMember(f.ctx, acme.ID, owner(ada), ada.ID), problem.CodeConflict)
	// An invited owner is not an owner yet.
	if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), "new@example.com", tenancy.Owner); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.s.RemoveMember(f.ctx, acme.ID, owner(ada), ada.ID), problem.CodeConflict)
}

// TestOwners_ConcurrentDemotionAndRemovalSerialise: two owners demote or
// remove each other at the same moment, many times. One wins, the other is
// a conflict; never both, never an internal error (it deadlocked), and the
// tenant always keeps an owner.
func TestOwners_ConcurrentDemotionAndRemovalSerialise(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	bob := f.user("bob@example.com", true)
	acme := f.tenant(ada, "acme")
	for round := range 30 {
		// Both are owners again.
		for _, u := range []tenancy.User{ada, bob} {
			if _, err := f.db.Pool.Exec(f.ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')
				ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = 'owner'`, acme.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		act := func(by, target tenancy.User) error {
			if round%2 == 0 {
				_, err := f.s.SetMemberRole(f.ctx, acme.ID, owner(by), target.ID, tenancy.Viewer)
				return err
			}
			return f.s.RemoveMember(f.ctx, acme.ID, owner(by), target.ID)
		}
		var wg sync.WaitGroup
		var errA, errB error
		start := make(chan struct{})
		wg.Go(func() { <-start; errA = act(ada, bob) })
		wg.Go(func() { <-start; errB = act(bob, ada) })
		close(start)
		wg.Wait()
		for _, err := range []error{errA, errB} {
			if err != nil && problem.Code(err) != problem.CodeConflict {
				t.Fatalf("round %d: %v, want success or conflict", round, err)
			}
		}
		if (errA == nil) == (errB == nil) {
			t.Fatalf("round %d: ada→bob %v, bob→ada %v; want exactly one to succeed", round, errA, errB)
		}
		var owners int
		if err := f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'`, acme.ID).Scan(&owners); err != nil {
			t.Fatal(err)
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners, want 1", round, owners)
		}
	}
}

// TestGranter_CappedByCurrentRole: a request that began while its user was
// an owner, and whose user lost that role before it ran, changes nothing
// and says it lost the race (conflict).
func TestGranter_CappedByCurrentRole(t *testing.T) {
	f := newFixture(t)
	ada := f.user("ada@example.com", true)
	bob := f.user("bob@example.com", true)
	cat := f.user("cat@example.com", true)
	acme := f.tenant(ada, "acme")
	for _, u := range []tenancy.User{bob, cat} {
		if _, err := f.s.AddMember(f.ctx, acme.ID, owner(ada), u.Email, tenancy.Owner); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.s.SetMemberRole(f.ctx, acme.ID, owner(ada), bob.ID, tenancy.Viewer); err != nil {
		t.Fatal(err)
	}
	// bob's request still says owner; he is a viewer now.
	_, err := f.s.SetMemberRole(f.ctx, acme.ID, owner(bob), ada.ID, tenancy.Viewer)
	wantCode(t, err, problem.CodeConflict)
	_, err = f.s.AddMember(f.ctx, acme.ID, owner(bob), "mal@example.com", tenancy.Owner)
	wantCode(t, err, problem.CodeConflict)
	if err := f.s.RemoveMember(f.ctx, acme.ID, owner(ada), bob.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.s.RemoveMember(f.ctx, acme.ID, owner(bob), cat.ID), problem.CodeConflict)
	if f.role(acme, ada) != tenancy.Owner || f.role(acme, cat) != tenancy.Owner {
		t.Fatal("a stale granter changed an owner")
	}
}

// allowAll lets every action through: these tests are about the domain, not
// about who may act.
func allowAll(context.Context, access.Object) error { return nil }
