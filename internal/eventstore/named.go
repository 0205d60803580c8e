package eventstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Named subscriptions and consumer groups.
//
// A named subscription is a server-side cursor over the tenant's log (or one
// category of it): the server keeps its checkpoint, the last position the
// consumer acknowledged, so a consumer that restarts, or moves to another
// machine, resumes where it left off. Consumers pull: Fetch returns the next
// events after the checkpoint and Ack moves the checkpoint forward. Delivery
// is at least once: events fetched but not acknowledged come again.
//
// # Consumer groups
//
// A consumer that passes a member id joins the subscription's consumer
// group. Members that fetched or acknowledged within the subscription's
// member TTL are live; sorted by id, they are numbered 0..N-1, and a stream
// belongs to member OwnerOf(stream, N): FNV-1a of the stream name modulo N.
// So while the membership holds still, every stream belongs to exactly one
// live member, every event of it is fetched by that member only, in log
// order, and each member keeps its own checkpoint (it has handled every
// event of its streams up to there).
//
// A change of the live set is a rebalance: the generation goes up, members
// that expired are dropped, and the assignment is recomputed — streams move
// between members. A member's checkpoint only speaks for the streams it
// owned, so a stream that moves to a member that was ahead of its old owner
// would lose the events in between. To lose nothing, a rebalance rewinds
// every live member to the group's floor, the lowest checkpoint of any
// member (the departed ones included). The price is redelivery: after a
// rebalance a member may receive again events it, or the stream's previous
// owner, already handled (at least once, never lost). Acks carry the
// generation of the batch they acknowledge, and an ack of an older
// generation is refused (409), so a member cannot move its checkpoint past
// events of streams it was assigned after it fetched. Membership is
// evaluated when a member fetches (its join and heartbeat), so a member that
// stopped is noticed at the next fetch of any member after its TTL.
//
// A subscription is used either by a single consumer (no member id; the
// checkpoint lives on the subscription) or as a group (every call passes a
// member id); once a member has joined, calls without a member id are
// refused.

// DefaultMemberTTL is how long a group member stays live without fetching or
// acknowledging, unless the subscription sets its own.
const DefaultMemberTTL = 30 * time.Second

// Bounds of a subscription's member TTL.
const (
	minMemberTTL = 100 * time.Millisecond
	maxMemberTTL = 24 * time.Hour
)

// groupScanPages bounds the log pages one group Fetch reads looking for its
// member's events, so a member whose streams are quiet never scans the
// whole log in one call; the batch's Through says how far it got.
const groupScanPages = 8

// SubscriptionSpec is what a named subscription is created with.
type SubscriptionSpec struct {
	// Category restricts the subscription to one category; "" reads the
	// whole log.
	Category string
	// FromPosition is the first position to deliver (0 or 1 for the whole
	// log).
	FromPosition int64
	// MemberTTL is how long a group member stays live without a fetch or an
	// ack; 0 means DefaultMemberTTL.
	MemberTTL time.Duration
}

// NamedSubscription is a subscription whose checkpoint the server keeps.
type NamedSubscription struct {
	Name         string `json:"name"`
	Category     string `json:"category"` // "" is the whole log
	FromPosition int64  `json:"from_position"`
	// Checkpoint is the last acknowledged position (0 before any). For a
	// consumer group it is the group's floor: the lowest member checkpoint.
	Checkpoint  int64 `json:"checkpoint"`
	MemberTTLMs int64 `json:"member_ttl_ms"`
	// Generation counts the group's rebalances.
	Generation int64 `json:"generation"`
	// Members are the group's members (only in GetSubscription).
	Members   []GroupMember `json:"members,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// GroupMember is one member of a consumer group.
type GroupMember struct {
	Member     string    `json:"member"`
	Checkpoint int64     `json:"checkpoint"`
	LastSeen   time.Time `json:"last_seen"`
}

// Assignment is a member's place in its group's current generation.
type Assignment struct {
	Member     string   `json:"member"`
	Generation int64    `json:"generation"`
	Members    []string `json:"members"` // the live members, sorted
	Index      int      `json:"index"`   // the member's place in Members
	Checkpoint int64    `json:"checkpoint"`
}

// Batch is what Fetch returns.
type Batch struct {
	Events []Event `json:"events"`
	// Through is the position to acknowledge once Events are handled: the
	// batch covers the consumer's share of the log up to here (for a group
	// member it can be past the last event, over events of other members).
	Through int64 `json:"through"`
	// Checkpoint is the checkpoint the batch was read after.
	Checkpoint int64 `json:"checkpoint"`
	// Member, Generation and Members describe the group (empty without a
	// member). Pass Generation back to Ack.
	Member     string   `json:"member,omitempty"`
	Generation int64    `json:"generation"`
	Members    []string `json:"members,omitempty"`
}

// AckResult is a checkpoint after an Ack.
type AckResult struct {
	// Checkpoint is the member's (or the single consumer's) checkpoint.
	Checkpoint int64  `json:"checkpoint"`
	Member     string `json:"member,omitempty"`
	Generation int64  `json:"generation"`
}

// OwnerOf returns the index of the member, among n sorted live members, that
// a stream belongs to: FNV-1a (32 bit) of its name modulo n.
func OwnerOf(stream string, n int) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(stream)) // a hash.Hash never fails to write
	return int(h.Sum32() % uint32(n))
}

// inTenantTx runs fn in a transaction scoped to tenant (app role, row-level
// security, no sequential scans) that commits when fn returns nil.
func (s *Store) inTenantTx(ctx context.Context, tenant uuid.UUID, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, scopeSQL, tenant.String()); err != nil {
			return fmt.Errorf("scope to tenant: %w", err)
		}
		return fn(tx)
	})
}

const namedCols = `name, category, from_position, checkpoint, member_ttl_ms, generation, created_at, updated_at`

func scanNamed(r pgx.Row) (NamedSubscription, error) {
	var n NamedSubscription
	err := r.Scan(&n.Name, &n.Category, &n.FromPosition, &n.Checkpoint, &n.MemberTTLMs, &n.Generation, &n.CreatedAt, &n.UpdatedAt)
	return n, err
}

func checkSubscriptionName(f problem.Fields, name string) {
	if msg := checkName(name); msg != "" {
		f.Add("name", msg)
	}
}

// CreateSubscription creates the named subscription name. It returns
// created false, and the existing subscription, when one with the same
// category, from position and member TTL exists already (a repeated
// create), and a conflict when one with other settings does.
func (s *Store) CreateSubscription(ctx context.Context, tenant uuid.UUID, name string, spec SubscriptionSpec) (NamedSubscription, bool, error) {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if spec.Category != "" {
		if msg := checkName(spec.Category); msg != "" {
			f.Add("category", msg)
		}
	}
	if spec.FromPosition < 0 {
		f.Add("from_position", "must not be negative")
	}
	if spec.MemberTTL == 0 {
		spec.MemberTTL = DefaultMemberTTL
	}
	if spec.MemberTTL < minMemberTTL || spec.MemberTTL > maxMemberTTL {
		f.Add("member_ttl_ms", fmt.Sprintf("must be from %d to %d", minMemberTTL.Milliseconds(), maxMemberTTL.Milliseconds()))
	}
	if err := f.Err(); err != nil {
		return NamedSubscription{}, false, err
	}
	ttl := spec.MemberTTL.Milliseconds()
	var out NamedSubscription
	created := false
	err := s.inTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		var err error
		out, err = scanNamed(tx.QueryRow(ctx, `INSERT INTO event_subscriptions
				(tenant_id, name, category, from_position, checkpoint, member_ttl_ms)
			VALUES ($1, $2, $3, $4::bigint, greatest($4::bigint - 1, 0), $5)
			ON CONFLICT (tenant_id, name) DO NOTHING
			RETURNING `+namedCols, tenant, name, spec.Category, spec.FromPosition, ttl))
		if err == nil {
			created = true
			return audit.Record(ctx, tx, tenant, audit.Change{Action: "subscription.created", ObjectKind: "subscription", ObjectID: name, After: out})
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		out, err = scanNamed(tx.QueryRow(ctx, `SELECT `+namedCols+` FROM event_subscriptions
			WHERE tenant_id = $1 AND name = $2`, tenant, name))
		if err != nil {
			return err
		}
		if out.Category != spec.Category || out.FromPosition != spec.FromPosition || out.MemberTTLMs != ttl {
			return problem.Errorf(problem.CodeConflict, "subscription %q exists with other settings (category %q, from_position %d, member_ttl_ms %d)",
				name, out.Category, out.FromPosition, out.MemberTTLMs)
		}
		return nil
	})
	if err != nil {
		if _, ok := problem.As(err); ok {
			return NamedSubscription{}, false, err
		}
		return NamedSubscription{}, false, fmt.Errorf("create subscription %s: %w", name, err)
	}
	return out, created, nil
}

// GetSubscription returns the named subscription with its group members.
func (s *Store) GetSubscription(ctx context.Context, tenant uuid.UUID, name string) (NamedSubscription, error) {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if err := f.Err(); err != nil {
		return NamedSubscription{}, err
	}
	var out NamedSubscription
	err := s.inTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		var err error
		out, err = scanNamed(tx.QueryRow(ctx, `SELECT `+namedCols+` FROM event_subscriptions
			WHERE tenant_id = $1 AND name = $2`, tenant, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("subscription", name)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT member, checkpoint, last_seen FROM event_group_members
			WHERE tenant_id = $1 AND subscription = $2 ORDER BY member`, tenant, name)
		if err != nil {
			return err
		}
		out.Members, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupMember, error) {
			var m GroupMember
			return m, r.Scan(&m.Member, &m.Checkpoint, &m.LastSeen)
		})
		return err
	})
	if err != nil {
		if _, ok := problem.As(err); ok {
			return NamedSubscription{}, err
		}
		return NamedSubscription{}, fmt.Errorf("get subscription %s: %w", name, err)
	}
	return out, nil
}

// ListSubscriptions returns a page of the tenant's named subscriptions
// (without their members), ordered by name, starting after cursor ("" for
// the first page), and the cursor of the next page ("" after the last).
func (s *Store) ListSubscriptions(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]NamedSubscription, string, error) {
	f := problem.Fields{}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return nil, "", err
	}
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]NamedSubscription, 0, min(limit+1, 64))
	err = s.inTenant(ctx, tenant, `SELECT `+namedCols+` FROM event_subscriptions
		WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, []any{tenant, after, limit + 1},
		func(r pgx.Rows) error {
			n, err := scanNamed(r)
			out = append(out, n)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list subscriptions: %w", err)
	}
	out, next := database.Page(out, limit, func(n NamedSubscription) string { return n.Name })
	return out, next, nil
}

// DeleteSubscription deletes the named subscription, its checkpoint and its
// group.
func (s *Store) DeleteSubscription(ctx context.Context, tenant uuid.UUID, name string) error {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if err := f.Err(); err != nil {
		return err
	}
	found := false
	err := s.inTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		before, err := scanNamed(tx.QueryRow(ctx, `DELETE FROM event_subscriptions WHERE tenant_id = $1 AND name = $2 RETURNING `+namedCols, tenant, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "subscription.deleted", ObjectKind: "subscription", ObjectID: name, Before: before})
	})
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", name, err)
	}
	if !found {
		return problem.NotFound("subscription", name)
	}
	return nil
}

// Join joins member to the consumer group of the named subscription, or
// renews its membership (a heartbeat), and returns its assignment. When the
// set of live members changed since the last call of any member, it
// rebalances: see the comment at the top of this file.
func (s *Store) Join(ctx context.Context, tenant uuid.UUID, name, member string) (Assignment, error) {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if msg := checkName(member); msg != "" {
		f.Add("member", msg)
	}
	if err := f.Err(); err != nil {
		return Assignment{}, err
	}
	a, _, err := s.join(ctx, tenant, name, member)
	return a, err
}

// join is Join, which also returns the subscription's category.
func (s *Store) join(ctx context.Context, tenant uuid.UUID, name, member string) (Assignment, string, error) {
	a := Assignment{Member: member}
	var category string
	err := s.inTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		// The row lock serializes the group's joins and acks.
		var floor, ttl int64
		var members []string
		err := tx.QueryRow(ctx, `SELECT category, checkpoint, member_ttl_ms, generation, members FROM event_subscriptions
			WHERE tenant_id = $1 AND name = $2 FOR UPDATE`, tenant, name).Scan(&category, &floor, &ttl, &a.Generation, &members)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("subscription", name)
		}
		if err != nil {
			return err
		}
		// A new member starts at the floor, which is never above any
		// member's checkpoint.
		if _, err := tx.Exec(ctx, `INSERT INTO event_group_members (tenant_id, subscription, member, checkpoint)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, subscription, member) DO UPDATE SET last_seen = now()`, tenant, name, member, floor); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT member, checkpoint, last_seen >= now() - $3 * interval '1 millisecond'
			FROM event_group_members WHERE tenant_id = $1 AND subscription = $2 ORDER BY member`, tenant, name, ttl)
		if err != nil {
			return err
		}
		type row struct {
			member     string
			checkpoint int64
			live       bool
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.member, &x.checkpoint, &x.live)
		})
		if err != nil {
			return err
		}
		var live []string
		low := int64(-1)
		for _, x := range all {
			if x.live {
				live = append(live, x.member) // sorted by the query
			}
			if low < 0 || x.checkpoint < low {
				low = x.checkpoint
			}
			if x.member == member {
				a.Checkpoint = x.checkpoint
			}
		}
		a.Members = live
		a.Index = slices.Index(live, member)
		if slices.Equal(live, members) {
			return nil
		}
		// Rebalance: every live member rewinds to the floor, the expired
		// ones leave.
		a.Generation++
		a.Checkpoint = low
		if _, err := tx.Exec(ctx, `DELETE FROM event_group_members
			WHERE tenant_id = $1 AND subscription = $2 AND NOT (member = ANY($3))`, tenant, name, live); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE event_group_members SET checkpoint = $3
			WHERE tenant_id = $1 AND subscription = $2`, tenant, name, low); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE event_subscriptions SET generation = $3, members = $4, checkpoint = $5, updated_at = now()
			WHERE tenant_id = $1 AND name = $2`, tenant, name, a.Generation, live, low)
		return err
	})
	if err != nil {
		if _, ok := problem.As(err); ok {
			return Assignment{}, "", err
		}
		return Assignment{}, "", fmt.Errorf("join subscription %s: %w", name, err)
	}
	return a, category, nil
}

// Fetch returns up to limit events of the named subscription after its
// checkpoint, in log order, without moving the checkpoint: Ack does that.
// With a member id, it first joins (or heartbeats) the member into the
// consumer group and returns only events of the streams assigned to it,
// after its own checkpoint. An empty batch means the consumer is caught up
// to Through.
func (s *Store) Fetch(ctx context.Context, tenant uuid.UUID, name, member string, limit int) (Batch, error) {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if member != "" {
		if msg := checkName(member); msg != "" {
			f.Add("member", msg)
		}
	}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return Batch{}, err
	}
	if member == "" {
		return s.fetchSingle(ctx, tenant, name, limit)
	}
	a, category, err := s.join(ctx, tenant, name, member)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{Events: []Event{}, Through: a.Checkpoint, Checkpoint: a.Checkpoint, Member: member, Generation: a.Generation, Members: a.Members}
	n := len(a.Members)
	page := min(s.cfg.MaxPageSize, limit*n)
	next := a.Checkpoint + 1
	for range groupScanPages {
		events, err := s.readLog(ctx, tenant, category, next, page)
		if err != nil {
			return Batch{}, fmt.Errorf("fetch from subscription %s: %w", name, err)
		}
		for _, e := range events {
			b.Through = e.Position
			if OwnerOf(e.Stream, n) != a.Index {
				continue
			}
			b.Events = append(b.Events, e)
			if len(b.Events) == limit {
				return b, nil
			}
		}
		if len(events) < page {
			break // the end of the log
		}
		next = b.Through + 1
	}
	return b, nil
}

// fetchSingle is Fetch without a member: the subscription's own checkpoint.
func (s *Store) fetchSingle(ctx context.Context, tenant uuid.UUID, name string, limit int) (Batch, error) {
	var (
		category   string
		checkpoint int64
		grouped    bool
		found      bool
	)
	err := s.inTenant(ctx, tenant, `SELECT category, checkpoint,
			EXISTS (SELECT 1 FROM event_group_members m WHERE m.tenant_id = $1 AND m.subscription = $2)
		FROM event_subscriptions WHERE tenant_id = $1 AND name = $2`, []any{tenant, name},
		func(r pgx.Rows) error { found = true; return r.Scan(&category, &checkpoint, &grouped) })
	if err != nil {
		return Batch{}, fmt.Errorf("fetch from subscription %s: %w", name, err)
	}
	if !found {
		return Batch{}, problem.NotFound("subscription", name)
	}
	if grouped {
		return Batch{}, problem.Errorf(problem.CodeConflict, "subscription %q is a consumer group: pass a member", name)
	}
	events, err := s.readLog(ctx, tenant, category, checkpoint+1, limit)
	if err != nil {
		return Batch{}, fmt.Errorf("fetch from subscription %s: %w", name, err)
	}
	b := Batch{Events: events, Through: checkpoint, Checkpoint: checkpoint}
	if len(events) > 0 {
		b.Through = events[len(events)-1].Position
	}
	return b, nil
}

// Ack moves the checkpoint of the named subscription (or, with a member id,
// of that group member) forward to position: the consumer has handled
// everything of its share of the log up to there (a Batch's Through). The
// checkpoint never moves back: an ack at or below it changes nothing. A
// position beyond the end of the log is invalid. A member's ack must carry
// the generation of the batch it acknowledges; after a rebalance it is a
// conflict, and the member fetches again.
func (s *Store) Ack(ctx context.Context, tenant uuid.UUID, name, member string, generation, position int64) (AckResult, error) {
	f := problem.Fields{}
	checkSubscriptionName(f, name)
	if member != "" {
		if msg := checkName(member); msg != "" {
			f.Add("member", msg)
		}
	}
	if position < 0 {
		f.Add("position", "must not be negative")
	}
	if err := f.Err(); err != nil {
		return AckResult{}, err
	}
	res := AckResult{Member: member}
	err := s.inTenantTx(ctx, tenant, func(tx pgx.Tx) error {
		var checkpoint, head int64
		var grouped bool
		err := tx.QueryRow(ctx, `SELECT checkpoint, generation,
				coalesce((SELECT h.position FROM event_log_heads h WHERE h.tenant_id = $1), 0),
				EXISTS (SELECT 1 FROM event_group_members m WHERE m.tenant_id = $1 AND m.subscription = $2)
			FROM event_subscriptions WHERE tenant_id = $1 AND name = $2 FOR UPDATE`, tenant, name).
			Scan(&checkpoint, &res.Generation, &head, &grouped)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("subscription", name)
		}
		if err != nil {
			return err
		}
		if position > head {
			return problem.Invalid(map[string]string{"position": fmt.Sprintf("is beyond the end of the log (position %d)", head)})
		}
		if member == "" {
			if grouped {
				return problem.Errorf(problem.CodeConflict, "subscription %q is a consumer group: pass a member", name)
			}
			return tx.QueryRow(ctx, `UPDATE event_subscriptions SET checkpoint = greatest(checkpoint, $3), updated_at = now()
				WHERE tenant_id = $1 AND name = $2 RETURNING checkpoint`, tenant, name, position).Scan(&res.Checkpoint)
		}
		if generation != res.Generation {
			return problem.Errorf(problem.CodeConflict,
				"the group of subscription %q rebalanced (generation %d, not %d): fetch again", name, res.Generation, generation)
		}
		err = tx.QueryRow(ctx, `UPDATE event_group_members SET checkpoint = greatest(checkpoint, $4), last_seen = now()
			WHERE tenant_id = $1 AND subscription = $2 AND member = $3 RETURNING checkpoint`, tenant, name, member, position).
			Scan(&res.Checkpoint)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("member", member)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE event_subscriptions SET updated_at = now(),
				checkpoint = (SELECT min(m.checkpoint) FROM event_group_members m WHERE m.tenant_id = $1 AND m.subscription = $2)
			WHERE tenant_id = $1 AND name = $2`, tenant, name)
		return err
	})
	if err != nil {
		if _, ok := problem.As(err); ok {
			return AckResult{}, err
		}
		return AckResult{}, fmt.Errorf("ack subscription %s: %w", name, err)
	}
	return res, nil
}
