package rbac

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// Actions.
const (
	Read   = "read"
	Create = "create"
	Update = "update"
	Delete = "delete"
	Replay = "replay" // re-publish dead-lettered messages (on the DLQ, and into the destination queue or topic)
	Use    = "use"    // coordination: append events, take locks, campaign, write KV
	// Payload reads a DLQ's message bodies and headers unredacted; Discard
	// takes dead letters out of replays.
	Payload = "payload"
	Discard = "discard"
	// Ingest sends spans over OTLP (on kind trace).
	Ingest = "ingest"
)

// Actions lists every action.
var Actions = []string{Read, Create, Update, Delete, Replay, Use, Payload, Discard, Ingest}

// Kinds of objects that rules name. "*" in a rule matches any kind.
var Kinds = []string{"tenant", "member", "team", "token", "policy", "audit",
	"service", "broker", "queue", "topic", "saga", "catalog", "dlq", "stream", "lock", "election", "kv", "cluster", "trace"}

// Object is what an action is on (see package access).
type Object = access.Object

// Of returns an Object of kind in the principal's tenant, named name.
func Of(p auth.Principal, kind, name string) Object {
	return Object{Tenant: p.Tenant, Kind: kind, Name: name}
}

// Rule is one policy rule: role may (effect allow) or may not (deny) do
// action on resource kind when condition holds.
type Rule struct {
	ID        uuid.UUID    `json:"id,omitempty"`
	Role      tenancy.Role `json:"role"`
	Resource  string       `json:"resource"`
	Action    string       `json:"action"`
	Condition string       `json:"condition,omitempty"`
	Effect    string       `json:"effect"`
	Builtin   bool         `json:"builtin"`
	CreatedAt *time.Time   `json:"created_at,omitempty"`
}

// subject and object are what conditions see as r.sub and r.obj.
type subject struct {
	Role  string
	Teams []string
}

type object struct {
	Kind   string
	Name   string
	Team   string
	Labels map[string]string
}

const modelText = `
[request_definition]
r = sub, obj, act

[policy_definition]
p = role, res, act, cond, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.sub.Role == p.role && (p.res == "*" || r.obj.Kind == p.res) && (p.act == "*" || r.act == p.act) && eval(p.cond)
`

// CatalogKinds are the kinds of catalog entities rules name ("catalog"
// stands for every kind an import brings that Switchboard does not model).
var CatalogKinds = []string{"service", "broker", "queue", "topic", "saga", "catalog"}

const (
	ownTeam   = "hasTeam(r.sub, r.obj.Team)"
	prodLabel = `label(r.obj, "env") == "prod"`
)

// Builtin returns the rules every tenant starts with.
func Builtin() []Rule {
	var rs []Rule
	add := func(role tenancy.Role, res, act string) {
		rs = append(rs, Rule{Role: role, Resource: res, Action: act, Effect: "allow", Builtin: true})
	}
	add(tenancy.Owner, "*", "*")
	add(tenancy.Admin, "*", "*")
	rs = append(rs, Rule{Role: tenancy.Admin, Resource: "tenant", Action: Delete, Effect: "deny", Builtin: true})
	for _, role := range []tenancy.Role{tenancy.Editor, tenancy.Operator, tenancy.Viewer} {
		for _, k := range []string{"tenant", "member", "team", "service", "broker", "queue", "topic", "saga", "catalog", "dlq", "stream", "lock", "election", "kv", "cluster", "trace"} {
			add(role, k, Read)
		}
	}
	// Catalog entities belong to their owning team: an editor changes
	// those of their own teams, and deleting one labelled env=prod takes
	// an admin.
	for _, k := range CatalogKinds {
		for _, act := range []string{Create, Update, Delete} {
			rs = append(rs, Rule{Role: tenancy.Editor, Resource: k, Action: act, Condition: ownTeam, Effect: "allow", Builtin: true})
		}
		rs = append(rs, Rule{Role: tenancy.Editor, Resource: k, Action: Delete, Condition: prodLabel, Effect: "deny", Builtin: true})
	}
	add(tenancy.Editor, "dlq", Create)
	add(tenancy.Editor, "dlq", Update)
	add(tenancy.Editor, "dlq", Delete)
	for _, role := range []tenancy.Role{tenancy.Editor, tenancy.Operator} {
		for _, k := range []string{"stream", "lock", "election", "kv"} {
			add(role, k, Use)
		}
		// Services send spans with an editor's or operator's API token;
		// a viewer's token only reads them.
		add(role, "trace", Ingest)
	}
	// Dead letters belong to the DLQ's owning team: its operators read
	// payloads, replay and discard; its editors read payloads. Replaying
	// into a queue or topic labelled env=prod takes an admin.
	for _, act := range []string{Replay, Payload, Discard} {
		rs = append(rs, Rule{Role: tenancy.Operator, Resource: "dlq", Action: act, Condition: ownTeam, Effect: "allow", Builtin: true})
	}
	rs = append(rs, Rule{Role: tenancy.Editor, Resource: "dlq", Action: Payload, Condition: ownTeam, Effect: "allow", Builtin: true})
	for _, k := range []string{"queue", "topic"} {
		add(tenancy.Operator, k, Replay)
		rs = append(rs, Rule{Role: tenancy.Operator, Resource: k, Action: Replay, Condition: prodLabel, Effect: "deny", Builtin: true})
	}
	return rs
}

// Service authorizes actions and stores tenants' rules.
type Service struct {
	db *database.DB
	// onRights is told of every policy change after it commits (see
	// OnRightsChange).
	onRights func(database.RightsChange)

	mu    sync.Mutex // guards cache
	cache map[uuid.UUID]*compiled
}

// compiled is a tenant's enforcer at one policy version, with a memo of its
// decisions: the rules are fixed for a version, and a decision depends only
// on the request's attributes, so it is computed once per distinct request.
type compiled struct {
	version  int64
	enforcer *casbin.SyncedEnforcer

	// usesName: some rule's condition reads the object's name; when none
	// does, decisions on objects that differ only by name are one decision
	// (a list or graph of thousands of entities asks a handful).
	usesName bool

	mu        sync.Mutex // guards decisions
	decisions map[string]bool
}

// readsName reports whether a rule's condition mentions the object's name.
func readsName(rules []Rule) bool {
	for _, r := range rules {
		if strings.Contains(r.Condition, "Name") {
			return true
		}
	}
	return false
}

// maxDecisions bounds the memo; when full it starts over.
const maxDecisions = 4096

func (c *compiled) enforce(sub subject, obj object, act string) (bool, error) {
	var key strings.Builder
	key.WriteString(sub.Role)
	for _, t := range sub.Teams {
		key.WriteString("\x00t" + t)
	}
	name := ""
	if c.usesName {
		name = obj.Name
	}
	key.WriteString("\x01" + obj.Kind + "\x01" + name + "\x01" + obj.Team + "\x01" + act)
	labels := make([]string, 0, len(obj.Labels))
	for k, v := range obj.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	for _, l := range labels {
		key.WriteString("\x00l" + l)
	}
	k := key.String()
	c.mu.Lock()
	ok, hit := c.decisions[k]
	c.mu.Unlock()
	if hit {
		return ok, nil
	}
	ok, err := c.enforcer.Enforce(sub, obj, act)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if len(c.decisions) >= maxDecisions {
		c.decisions = map[string]bool{}
	}
	c.decisions[k] = ok
	c.mu.Unlock()
	return ok, nil
}

// OnRightsChange sets the function told of every policy change after it
// commits, so this replica's memory of rights forgets the tenant's before
// the change is answered. Set it before use.
func (s *Service) OnRightsChange(fn func(database.RightsChange)) { s.onRights = fn }

func (s *Service) rightsChanged(ch database.RightsChange) {
	if s.onRights != nil {
		s.onRights(ch)
	}
}

// New returns a Service on db.
func New(db *database.DB) *Service {
	return &Service{db: db, cache: map[uuid.UUID]*compiled{}}
}

// Check returns the decision "may p do act?" as an access.Check, for a
// domain method to ask about the object it has loaded (its owning team and
// labels included) before it acts.
func (s *Service) Check(p auth.Principal, act string) access.Check {
	return func(ctx context.Context, obj access.Object) error { return s.Authorize(ctx, p, act, obj) }
}

// Authorize returns nil when p may do act on obj; a not-found error when obj
// belongs to another tenant; a forbidden error otherwise.
func (s *Service) Authorize(ctx context.Context, p auth.Principal, act string, obj Object) error {
	if obj.Tenant != p.Tenant || p.Tenant == uuid.Nil {
		return problem.NotFound(obj.Kind, obj.Name)
	}
	if p.Role == tenancy.Owner && obj.Kind == "policy" {
		// No rule can lock the owners out: they can always repair the policy.
		return nil
	}
	c, err := s.enforcer(ctx, p.Tenant, p.PolicyVersion)
	if err != nil {
		return err
	}
	ok, err := c.enforce(subject{Role: string(p.Role), Teams: p.Teams}, toObject(obj), act)
	if err != nil {
		// A rule whose condition fails on this request (a type error, a bad
		// regular expression) denies: failing closed, never a 500.
		slog.WarnContext(ctx, "policy condition failed; denying", "tenant", p.TenantSlug, "role", p.Role, "action", act, "kind", obj.Kind, "err", err)
		ok = false
	}
	if !ok {
		return problem.Errorf(problem.CodeForbidden, "%s may not %s %s", withArticle(string(p.Role)), act, kindNoun(obj))
	}
	return nil
}

func kindNoun(o Object) string {
	if o.Name != "" {
		return fmt.Sprintf("%s %q", o.Kind, o.Name)
	}
	if k, ok := strings.CutSuffix(o.Kind, "y"); ok {
		return k + "ies"
	}
	return o.Kind + "s"
}

func withArticle(w string) string {
	if w != "" && strings.ContainsRune("aeiou", rune(w[0])) {
		return "an " + w
	}
	return "a " + w
}

func toObject(o Object) object {
	labels := o.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return object{Kind: o.Kind, Name: o.Name, Team: o.Team, Labels: labels}
}

// enforcer returns tenant's enforcer at version, building it when the cached
// one is older.
func (s *Service) enforcer(ctx context.Context, tenant uuid.UUID, version int64) (*compiled, error) {
	s.mu.Lock()
	c := s.cache[tenant]
	s.mu.Unlock()
	if c != nil && c.version >= version {
		return c, nil
	}
	rules, err := s.tenantRules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	e, err := build(append(Builtin(), rules...))
	if err != nil {
		return nil, err
	}
	c = &compiled{version: version, enforcer: e, decisions: map[string]bool{}, usesName: readsName(rules)}
	s.mu.Lock()
	if cur := s.cache[tenant]; cur == nil || cur.version < version {
		s.cache[tenant] = c
	}
	s.mu.Unlock()
	return c, nil
}

func build(rules []Rule) (*casbin.SyncedEnforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, err
	}
	e.AddFunction("hasTeam", hasTeam)
	e.AddFunction("label", label)
	ps := make([][]string, 0, len(rules))
	for _, r := range rules {
		cond := r.Condition
		if cond == "" {
			cond = "true"
		}
		ps = append(ps, []string{string(r.Role), r.Resource, r.Action, cond, r.Effect})
	}
	if _, err := e.AddPolicies(ps); err != nil {
		return nil, err
	}
	return e, nil
}

// hasTeam(r.sub, team): the subject is a member of team. Conditions use it
// as hasTeam(r.sub, r.obj.Team).
func hasTeam(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, errors.New("hasTeam takes (r.sub, team)")
	}
	s, ok1 := args[0].(subject)
	team, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, errors.New("hasTeam takes (r.sub, team)")
	}
	return team != "" && slices.Contains(s.Teams, team), nil
}

// label(r.obj, "env"): the object's label value, "" when absent.
func label(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, errors.New(`label takes (r.obj, "key")`)
	}
	o, ok1 := args[0].(object)
	key, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, errors.New(`label takes (r.obj, "key")`)
	}
	return o.Labels[key], nil
}

// validate checks a rule's fields and that its condition compiles and
// evaluates to a boolean on sample input.
func validate(r Rule) error {
	f := problem.Fields{}
	f.Check(r.Role.Valid(), "role", "must be one of owner, admin, editor, operator, viewer")
	f.Check(r.Resource == "*" || slices.Contains(Kinds, r.Resource), "resource", "must be * or one of "+strings.Join(Kinds, ", "))
	f.Check(r.Action == "*" || slices.Contains(Actions, r.Action), "action", "must be * or one of "+strings.Join(Actions, ", "))
	f.Check(r.Effect == "allow" || r.Effect == "deny", "effect", "must be allow or deny")
	f.Check(len(r.Condition) <= 500 && !strings.ContainsAny(r.Condition, "\x00\n\r"), "condition", "must be one line of at most 500 characters")
	if err := f.Err(); err != nil {
		return err
	}
	if r.Condition == "" {
		return nil
	}
	// Evaluate the rule on a request it matches, so the condition is
	// compiled and run, not skipped by the cheaper tests before it.
	kinds, act := []string{r.Resource}, r.Action
	if r.Resource == "*" {
		kinds = []string{"dlq", "team"}
	}
	if act == "*" {
		act = Read
	}
	e, err := build([]Rule{r})
	for _, kind := range kinds {
		for _, sample := range []struct {
			sub subject
			obj object
		}{
			{subject{Role: string(r.Role), Teams: []string{"t"}}, object{Kind: kind, Name: "n", Team: "t", Labels: map[string]string{"env": "prod"}}},
			{subject{Role: string(r.Role)}, object{Kind: kind, Labels: map[string]string{}}},
		} {
			if err != nil {
				break
			}
			// Either answer is fine; only an error means a bad condition.
			_, err = e.Enforce(sample.sub, sample.obj, act)
		}
	}
	if err != nil {
		return problem.Invalid(map[string]string{"condition": "is not a valid expression over r.sub (Role, Teams) and r.obj (Kind, Name, Team, Labels): use e.g. hasTeam(r.sub, r.obj.Team) or label(r.obj, \"env\") == \"prod\""})
	}
	return nil
}

const ruleSQL = `SELECT id, role, resource, action, condition, effect, created_at FROM policies WHERE tenant_id = $1`

func (s *Service) tenantRules(ctx context.Context, tenant uuid.UUID) ([]Rule, error) {
	var out []Rule
	err := s.db.ReadTenant(ctx, tenant, ruleSQL+` ORDER BY created_at, id`, []any{tenant}, func(r pgx.Rows) error {
		var x Rule
		x.CreatedAt = new(time.Time)
		if err := r.Scan(&x.ID, &x.Role, &x.Resource, &x.Action, &x.Condition, &x.Effect, x.CreatedAt); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	return out, nil
}

// List returns the built-in rules followed by the tenant's own.
func (s *Service) List(ctx context.Context, tenant uuid.UUID) ([]Rule, error) {
	rules, err := s.tenantRules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return append(Builtin(), rules...), nil
}

// Add adds a rule to tenant on behalf of an author with role author, who
// may only write rules for roles at or below their own.
func (s *Service) Add(ctx context.Context, tenant uuid.UUID, author tenancy.Role, r Rule) (Rule, error) {
	r.Builtin = false
	if err := validate(r); err != nil {
		return Rule{}, err
	}
	if !author.AtLeast(r.Role) {
		return Rule{}, problem.Errorf(problem.CodeForbidden, "%s cannot write rules for the %s role", withArticle(string(author)), r.Role)
	}
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		r.CreatedAt = new(time.Time)
		err := tx.QueryRow(ctx, `INSERT INTO policies (tenant_id, role, resource, action, condition, effect) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING id, created_at`, tenant, r.Role, r.Resource, r.Action, r.Condition, r.Effect).Scan(&r.ID, r.CreatedAt)
		if err != nil {
			return fmt.Errorf("add policy: %w", err)
		}
		if err := bumpVersion(ctx, tx, tenant); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "policy.added", ObjectKind: "policy", ObjectID: r.ID.String(), After: r})
	})
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant})
	}
	return r, err
}

// Remove deletes one of tenant's rules.
func (s *Service) Remove(ctx context.Context, tenant, id uuid.UUID) error {
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var r Rule
		r.CreatedAt = new(time.Time)
		err := tx.QueryRow(ctx, `DELETE FROM policies WHERE tenant_id = $1 AND id = $2 RETURNING id, role, resource, action, condition, effect, created_at`, tenant, id).
			Scan(&r.ID, &r.Role, &r.Resource, &r.Action, &r.Condition, &r.Effect, r.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("policy", id.String())
		}
		if err != nil {
			return fmt.Errorf("remove policy: %w", err)
		}
		if err := bumpVersion(ctx, tx, tenant); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "policy.removed", ObjectKind: "policy", ObjectID: id.String(), Before: r})
	})
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant})
	}
	return err
}

func bumpVersion(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	if _, err := tx.Exec(ctx, `UPDATE tenants SET policy_version = policy_version + 1 WHERE id = $1`, tenant); err != nil {
		return fmt.Errorf("bump policy version: %w", err)
	}
	return nil
}
