package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Sealer keeps broker credentials sealed at rest (internal/secrets).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Change is what a committed catalog change tells the live hub.
type Change struct {
	Action string `json:"action"` // created, updated, deleted, related, unrelated, imported, health
	Ref    string `json:"ref,omitempty"`
	// Relation, for related and unrelated.
	Relation *Relation `json:"relation,omitempty"`
	Version  int64     `json:"version,omitempty"`
}

// Store keeps a tenant's catalog in PostgreSQL.
type Store struct {
	db       *database.DB
	seal     Sealer
	onChange func(tenant uuid.UUID, c Change)
	// checkHost refuses a host the server must not connect to (the egress
	// deny-list); nil: any.
	checkHost func(ctx context.Context, host string) error
	annotate  func(ctx context.Context, tenant uuid.UUID, t *Topology) error
}

// CheckHosts sets fn to refuse, when an entity is saved, the hosts of its
// URLs the server would connect to (health checks, brokers) that it must
// not reach. Set it before serving.
func (s *Store) CheckHosts(fn func(ctx context.Context, host string) error) { s.checkHost = fn }

// checkHosts asks checkHost about every host e makes the server connect to.
func (s *Store) checkHosts(ctx context.Context, e *Entity) error {
	if s.checkHost == nil {
		return nil
	}
	hosts := map[string]string{} // host → field
	add := func(field, raw string) {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
			hosts[u.Hostname()] = field
		}
	}
	switch {
	case e.Service != nil && e.Service.HealthCheck != nil:
		add("health_check.url", e.Service.HealthCheck.URL)
	case e.Broker != nil:
		add("url", e.Broker.URL)
		add("management_url", e.Broker.ManagementURL)
		for i, seed := range e.Broker.BootstrapServers {
			if h, _, err := net.SplitHostPort(seed); err == nil {
				hosts[h] = fmt.Sprintf("bootstrap_servers[%d]", i)
			}
		}
	}
	for h, field := range hosts {
		if err := s.checkHost(ctx, h); err != nil {
			pe, ok := problem.As(err)
			if !ok {
				return err
			}
			return &problem.Error{Code: problem.CodeUnprocessable, Message: pe.Message, Fields: map[string]string{field: pe.Message}}
		}
	}
	return nil
}

// Reseal seals again, with the key that seals now, every broker's
// credentials sealed with an older one (the end of a key rotation), and
// returns how many it re-sealed.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	st, ok := s.seal.(interface{ Stale([]byte) bool })
	if !ok {
		return 0, nil
	}
	type row struct {
		tenant, id uuid.UUID
		sealed     []byte
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT tenant_id, id, credentials FROM catalog_entities WHERE credentials IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("read credentials: %w", err)
	}
	var stale []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tenant, &r.id, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		if st.Stale(r.sealed) {
			stale = append(stale, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range stale {
		aad := credsAAD(r.tenant, r.id)
		plain, err := s.seal.Open(r.sealed, aad)
		if err != nil {
			return 0, fmt.Errorf("open credentials of %s: %w", r.id, err)
		}
		sealed, err := s.seal.Seal(plain, aad)
		if err != nil {
			return 0, err
		}
		if _, err := s.db.Pool.Exec(ctx, `UPDATE catalog_entities SET credentials = $3 WHERE tenant_id = $1 AND id = $2 AND credentials = $4`,
			r.tenant, r.id, sealed, r.sealed); err != nil {
			return 0, fmt.Errorf("re-seal credentials: %w", err)
		}
	}
	return len(stale), nil
}

// New returns a Store on db; seal keeps broker credentials (nil: brokers
// with credentials are refused).
func New(db *database.DB, seal Sealer) *Store {
	return &Store{db: db, seal: seal}
}

// OnChange sets fn to be told of every committed change (the live hub's
// publisher). Set it before serving.
func (s *Store) OnChange(fn func(tenant uuid.UUID, c Change)) { s.onChange = fn }

func (s *Store) changed(tenant uuid.UUID, c Change) {
	if s.onChange != nil {
		s.onChange(tenant, c)
	}
}

// AuthKind is the kind authorization rules name for an entity of kind:
// native kinds are their own; imported kinds are "catalog".
func AuthKind(kind string) string {
	if IsNative(kind) {
		return kind
	}
	return "catalog"
}

// Object is the entity as authorization sees it.
func (e *Entity) Object(tenant uuid.UUID) access.Object {
	return access.Object{Tenant: tenant, Kind: AuthKind(e.Kind), Name: e.Ref().String(), Team: e.OwnerTeam, Labels: e.Labels}
}

const entityColumns = `id, kind, namespace, name, owner_team, description, labels, annotations, links, spec, credentials IS NOT NULL,
	source, orphaned, raw, health, version, created_at, updated_at`

// row is an entity as read, with what the API never shows.
type row struct {
	Entity
	id uuid.UUID
}

func scanEntity(r pgx.Row) (row, error) {
	var x row
	var spec []byte
	var hasCreds bool
	var health []byte
	err := r.Scan(&x.id, &x.Kind, &x.Namespace, &x.Name, &x.OwnerTeam, &x.Description, &x.Labels, &x.Annotations, &x.Links, &spec, &hasCreds,
		&x.Source, &x.Orphaned, &x.Raw, &health, &x.Version, &x.CreatedAt, &x.UpdatedAt)
	if err != nil {
		return x, err
	}
	if err := decodeSpec(&x.Entity, spec); err != nil {
		return x, err
	}
	if x.Broker != nil {
		x.Broker.HasCredentials = hasCreds
	}
	if len(health) > 0 {
		x.Health = &Health{}
		if err := json.Unmarshal(health, x.Health); err != nil {
			return x, fmt.Errorf("read health of %s: %w", x.Ref(), err)
		}
	}
	if x.Labels == nil {
		x.Labels = map[string]string{}
	}
	if x.Links == nil {
		x.Links = []Link{}
	}
	return x, nil
}

func decodeSpec(e *Entity, spec []byte) error {
	var dst any
	switch e.Kind {
	case KindService:
		e.Service = &ServiceSpec{}
		dst = e.Service
	case KindBroker:
		e.Broker = &BrokerSpec{}
		dst = e.Broker
	case KindQueue:
		e.Queue = &QueueSpec{}
		dst = e.Queue
	case KindTopic:
		e.Topic = &TopicSpec{}
		dst = e.Topic
	case KindSaga:
		e.Saga = &SagaSpec{}
		dst = e.Saga
	default:
		return nil
	}
	if len(spec) == 0 {
		return nil
	}
	if err := json.Unmarshal(spec, dst); err != nil {
		return fmt.Errorf("read spec of %s: %w", e.Ref(), err)
	}
	return nil
}

func specOf(e *Entity) any {
	switch e.Kind {
	case KindService:
		return e.Service
	case KindBroker:
		b := *e.Broker
		b.HasCredentials = false
		return b
	case KindQueue:
		return e.Queue
	case KindTopic:
		return e.Topic
	case KindSaga:
		return e.Saga
	}
	return struct{}{}
}

func loadEntity(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, ref Ref, lock bool) (row, error) {
	q := `SELECT ` + entityColumns + ` FROM catalog_entities WHERE tenant_id = $1 AND ref = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	x, err := scanEntity(tx.QueryRow(ctx, q, tenant, ref.String()))
	if errors.Is(err, pgx.ErrNoRows) {
		return x, problem.NotFound(ref.Kind, ref.Name)
	}
	if err != nil {
		return x, fmt.Errorf("load %s: %w", ref, err)
	}
	return x, nil
}

// normalize fills defaults and trims what a caller may leave loose.
func normalize(e *Entity) {
	if e.Namespace == "" {
		e.Namespace = DefaultNamespace
	}
	e.Description = strings.TrimSpace(e.Description)
	if e.Labels == nil {
		e.Labels = map[string]string{}
	}
	if e.Links == nil {
		e.Links = []Link{}
	}
	switch e.Kind {
	case KindService:
		if e.Service == nil {
			e.Service = &ServiceSpec{}
		}
		if e.Service.Endpoints == nil {
			e.Service.Endpoints = []Endpoint{}
		}
	case KindQueue:
		if e.Queue != nil {
			if e.Queue.VHost == "" {
				e.Queue.VHost = "/"
			}
			if e.Queue.Bindings == nil {
				e.Queue.Bindings = []Binding{}
			}
		}
	case KindBroker:
		if e.Broker != nil && e.Broker.Type == RabbitMQ && e.Broker.VHost == "" {
			e.Broker.VHost = "/"
		}
	}
}

// checkReferences checks what e names inside its spec exists: its owning
// team, a queue's or topic's broker (of the right type), a saga's services.
func checkReferences(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, e *Entity) error {
	f := problem.Fields{}
	if e.OwnerTeam != "" && IsNative(e.Kind) {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE tenant_id = $1 AND slug = $2)`, tenant, e.OwnerTeam).Scan(&ok); err != nil {
			return fmt.Errorf("check owner team: %w", err)
		}
		f.Check(ok, "owner_team", fmt.Sprintf("no team %q in this tenant", e.OwnerTeam))
	}
	brokerOf := func(name, want, field string) error {
		var typ string
		err := tx.QueryRow(ctx, `SELECT spec->>'type' FROM catalog_entities WHERE tenant_id = $1 AND ref = $2`, tenant, KindBroker+":"+name).Scan(&typ)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			f.Add(field, fmt.Sprintf("no broker %q in the catalog", name))
		case err != nil:
			return fmt.Errorf("check broker: %w", err)
		case typ != want:
			f.Add(field, fmt.Sprintf("broker %q is a %s broker, not %s", name, typ, want))
		}
		return nil
	}
	switch {
	case e.Queue != nil:
		if err := brokerOf(e.Queue.Broker, RabbitMQ, "broker"); err != nil {
			return err
		}
	case e.Topic != nil:
		if err := brokerOf(e.Topic.Broker, Kafka, "broker"); err != nil {
			return err
		}
	case e.Saga != nil:
		refs := make([]string, 0, len(e.Saga.Steps))
		for _, st := range e.Saga.Steps {
			refs = append(refs, KindService+":"+st.Service)
		}
		found := map[string]bool{}
		rows, err := tx.Query(ctx, `SELECT ref FROM catalog_entities WHERE tenant_id = $1 AND ref = ANY($2)`, tenant, refs)
		if err != nil {
			return fmt.Errorf("check saga services: %w", err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return err
			}
			found[r] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, st := range e.Saga.Steps {
			f.Check(found[KindService+":"+st.Service], fmt.Sprintf("steps[%d].service", i), fmt.Sprintf("no service %q in the catalog", st.Service))
		}
	}
	if err := f.Err(); err != nil {
		pe, _ := problem.As(err)
		pe.Code = problem.CodeUnprocessable
		return pe
	}
	return nil
}

// Create adds e to tenant's catalog, if allow lets the caller create it as
// given (its owning team and labels). creds, for a broker, are sealed.
func (s *Store) Create(ctx context.Context, tenant uuid.UUID, e Entity, creds *BrokerCredentials, allow access.Check) (Entity, error) {
	e.Source, e.Orphaned, e.Raw = "", false, nil
	normalize(&e)
	if err := validate(&e); err != nil {
		return Entity{}, err
	}
	if err := allow(ctx, e.Object(tenant)); err != nil {
		return Entity{}, err
	}
	if err := s.checkHosts(ctx, &e); err != nil {
		return Entity{}, err
	}
	var out row
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := checkReferences(ctx, tx, tenant, &e); err != nil {
			return err
		}
		id := uuid.New()
		sealed, err := s.sealCreds(tenant, id, creds)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO catalog_entities (tenant_id, id, kind, namespace, name, owner_team, description, labels, annotations, links, spec, credentials)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			tenant, id, e.Kind, e.Namespace, e.Name, e.OwnerTeam, e.Description, e.Labels, nonNil(e.Annotations), e.Links, specOf(&e), sealed)
		if database.IsUniqueViolation(err, "") {
			return problem.Errorf(problem.CodeConflict, "%s %q already exists", e.Kind, e.Name)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", e.Ref(), err)
		}
		if out, err = loadEntity(ctx, tx, tenant, e.Ref(), false); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: e.Kind + ".created", ObjectKind: e.Kind, ObjectID: e.Ref().String(), After: out.Entity})
	})
	if err != nil {
		return Entity{}, err
	}
	s.changed(tenant, Change{Action: "created", Ref: out.Ref().String(), Version: out.Version})
	return out.Entity, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// sealCreds seals creds for the entity id of tenant; nil when there are
// none.
func (s *Store) sealCreds(tenant, id uuid.UUID, creds *BrokerCredentials) ([]byte, error) {
	if creds == nil || *creds == (BrokerCredentials{}) {
		return nil, nil
	}
	if s.seal == nil {
		return nil, problem.Errorf(problem.CodeUnavailable, "this server has no secrets key, so it cannot keep broker credentials")
	}
	plain, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	return s.seal.Seal(plain, credsAAD(tenant, id))
}

func credsAAD(tenant, id uuid.UUID) []byte {
	return []byte("catalog_entities.credentials/" + tenant.String() + "/" + id.String())
}

// Get returns the entity ref of tenant, if allow lets the caller read it.
func (s *Store) Get(ctx context.Context, tenant uuid.UUID, ref Ref, allow access.Check) (Entity, error) {
	var out row
	found := false
	err := s.db.ReadTenant(ctx, tenant, `SELECT `+entityColumns+` FROM catalog_entities WHERE tenant_id = $1 AND ref = $2`,
		[]any{tenant, ref.String()}, func(r pgx.Rows) (err error) {
			out, err = scanEntity(r)
			found = err == nil
			return err
		})
	switch {
	case err != nil:
		return Entity{}, fmt.Errorf("get %s: %w", ref, err)
	case !found:
		return Entity{}, problem.NotFound(ref.Kind, ref.Name)
	}
	if err := allow(ctx, out.Object(tenant)); err != nil {
		return Entity{}, err
	}
	return out.Entity, nil
}

// List returns a page of tenant's entities that pass f and that allow lets
// the caller read, ordered by reference.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, f Filter, cursor string, limit int, allow access.Check) ([]Entity, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	where, args := filterSQL(tenant, f)
	args = append(args, after, limit+1)
	q := `SELECT ` + entityColumns + ` FROM catalog_entities WHERE ` + where +
		` AND ref > $` + strconv.Itoa(len(args)-1) + ` ORDER BY ref LIMIT $` + strconv.Itoa(len(args))
	rows := make([]Entity, 0, limit+1)
	err = s.db.ReadTenant(ctx, tenant, q, args, func(r pgx.Rows) error {
		x, err := scanEntity(r)
		rows = append(rows, x.Entity)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list catalog: %w", err)
	}
	page, next := database.Page(rows, limit, func(e Entity) string { return e.Ref().String() })
	out := page[:0]
	for _, e := range page {
		if allow(ctx, e.Object(tenant)) == nil {
			out = append(out, e)
		}
	}
	return out, next, nil
}

// filterSQL is f as a WHERE clause on catalog_entities; $1 is the tenant.
func filterSQL(tenant uuid.UUID, f Filter) (string, []any) {
	args := []any{tenant}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	w := []string{"tenant_id = $1"}
	if len(f.Kinds) > 0 {
		w = append(w, "kind = ANY("+arg(f.Kinds)+")")
	}
	if f.OwnerTeam != "" {
		w = append(w, "owner_team = "+arg(f.OwnerTeam))
	}
	for _, sel := range f.Labels {
		switch sel.Op {
		case "=":
			w = append(w, "labels @> "+arg(map[string]string{sel.Key: sel.Value}))
		case "!=":
			w = append(w, "NOT labels @> "+arg(map[string]string{sel.Key: sel.Value}))
		case "exists":
			w = append(w, "labels ? "+arg(sel.Key))
		case "!exists":
			w = append(w, "NOT labels ? "+arg(sel.Key))
		}
	}
	if f.Q != "" {
		p := arg("%" + likeEscape(f.Q) + "%")
		w = append(w, "(name ILIKE "+p+" OR description ILIKE "+p+")")
	}
	return strings.Join(w, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Update replaces the modelled fields of ref with those of next (the
// caller applied its patch to the entity it read), if allow lets the caller
// update the entity as loaded and as it would become. ifVersion > 0 must
// match the stored version. creds, when not nil, replace the stored ones.
func (s *Store) Update(ctx context.Context, tenant uuid.UUID, ref Ref, ifVersion int64, next Entity, creds *BrokerCredentials, allow access.Check) (Entity, error) {
	if next.Kind != ref.Kind || next.Name != ref.Name || (next.Namespace != "" && next.Namespace != ref.Namespace) {
		return Entity{}, problem.Errorf(problem.CodeUnprocessable, "an entity's kind and name cannot change; create a new one")
	}
	next.Namespace = ref.Namespace
	normalize(&next)
	if err := validate(&next); err != nil {
		return Entity{}, err
	}
	if err := s.checkHosts(ctx, &next); err != nil {
		return Entity{}, err
	}
	var out row
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := loadEntity(ctx, tx, tenant, ref, true)
		if err != nil {
			return err
		}
		if err := allow(ctx, before.Object(tenant)); err != nil {
			return err
		}
		if err := checkVersion(ref, before.Version, ifVersion); err != nil {
			return err
		}
		if next.OwnerTeam != before.OwnerTeam || !sameLabels(next.Labels, before.Labels) {
			if err := allow(ctx, next.Object(tenant)); err != nil {
				return err
			}
		}
		if err := checkReferences(ctx, tx, tenant, &next); err != nil {
			return err
		}
		set := `owner_team = $3, description = $4, labels = $5, annotations = $6, links = $7, spec = $8, orphaned = false, version = version + 1, updated_at = now()`
		args := []any{tenant, before.id, next.OwnerTeam, next.Description, next.Labels, nonNil(next.Annotations), next.Links, specOf(&next)}
		if next.Broker != nil {
			if before.Broker.Type != next.Broker.Type {
				return problem.Errorf(problem.CodeUnprocessable, "a broker's kind cannot change (%s to %s): register a new broker", before.Broker.Type, next.Broker.Type)
			}
			sealed, err := s.nextCreds(ctx, tx, tenant, before, next, creds)
			if err != nil {
				return err
			}
			set += `, credentials = $9`
			args = append(args, sealed)
		}
		if _, err := tx.Exec(ctx, `UPDATE catalog_entities SET `+set+` WHERE tenant_id = $1 AND id = $2`, args...); err != nil {
			return fmt.Errorf("update %s: %w", ref, err)
		}
		if out, err = loadEntity(ctx, tx, tenant, ref, false); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: ref.Kind + ".updated", ObjectKind: ref.Kind, ObjectID: ref.String(), Before: before.Entity, After: out.Entity})
	})
	if err != nil {
		return Entity{}, err
	}
	s.changed(tenant, Change{Action: "updated", Ref: ref.String(), Version: out.Version})
	return out.Entity, nil
}

// checkVersion fails when the caller asked for version want (> 0) and the
// entity is at another.
func checkVersion(ref Ref, have, want int64) error {
	if want > 0 && have != want {
		return problem.Errorf(problem.CodePrecondition, "%s is at version %d, not %d: read it again", ref, have, want)
	}
	return nil
}

// nextCreds is what a broker's sealed credentials become when before is
// changed to next with the request's creds (nil: none given). Credentials
// belong to the address they were given for: when an address changes and
// the request gives none for it, the stored ones are dropped, never sent
// to the new host. Given ones replace the stored ones of their address.
func (s *Store) nextCreds(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, before row, next Entity, creds *BrokerCredentials) ([]byte, error) {
	var sealed []byte
	if err := tx.QueryRow(ctx, `SELECT credentials FROM catalog_entities WHERE tenant_id = $1 AND id = $2`, tenant, before.id).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var m BrokerCredentials
	if len(sealed) > 0 {
		if s.seal == nil {
			return nil, problem.Errorf(problem.CodeUnavailable, "this server has no secrets key, so it cannot open broker %q's credentials", before.Name)
		}
		plain, err := s.seal.Open(sealed, credsAAD(tenant, before.id))
		if err != nil {
			return nil, fmt.Errorf("open credentials of broker %s: %w", before.Name, err)
		}
		if err := json.Unmarshal(plain, &m); err != nil {
			return nil, fmt.Errorf("read credentials of broker %s: %w", before.Name, err)
		}
	}
	b, n := before.Broker, next.Broker
	saslUser := func(x *BrokerSpec) string {
		if x.SASL == nil {
			return ""
		}
		return x.SASL.Username
	}
	if b.URL != n.URL || !slices.Equal(b.BootstrapServers, n.BootstrapServers) || saslUser(b) != saslUser(n) {
		m.Username, m.Password = "", ""
	}
	if b.ManagementURL != n.ManagementURL {
		m.ManagementUsername, m.ManagementPassword = "", ""
	}
	if creds != nil {
		if creds.Username != "" || creds.Password != "" {
			m.Username, m.Password = creds.Username, creds.Password
		}
		if creds.ManagementUsername != "" || creds.ManagementPassword != "" {
			m.ManagementUsername, m.ManagementPassword = creds.ManagementUsername, creds.ManagementPassword
		}
	}
	return s.sealCreds(tenant, before.id, &m)
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Delete removes ref, if allow lets the caller delete it as loaded. When
// other entities' relations point at it, it fails naming them unless
// cascade, which removes those relations too; its own relations go with it.
func (s *Store) Delete(ctx context.Context, tenant uuid.UUID, ref Ref, ifVersion int64, cascade bool, allow access.Check) error {
	key := ref.String()
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := loadEntity(ctx, tx, tenant, ref, true)
		if err != nil {
			return err
		}
		if err := allow(ctx, before.Object(tenant)); err != nil {
			return err
		}
		if err := checkVersion(ref, before.Version, ifVersion); err != nil {
			return err
		}
		relations, users, err := pointingAt(ctx, tx, tenant, key, before.Entity)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			// Not relations: what names it in its own spec would be left
			// pointing at nothing, so cascade does not remove it.
			return problem.Errorf(problem.CodeConflict, "%s is still in use: %s; delete or change those first", key, strings.Join(users, "; "))
		}
		if !cascade && len(relations) > 0 {
			return problem.Errorf(problem.CodeConflict, "%s is still in use: %s; remove those first or delete with ?cascade=true",
				key, strings.Join(relations, "; "))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catalog_relations WHERE tenant_id = $1 AND (from_ref = $2 OR to_ref = $2)`, tenant, key); err != nil {
			return fmt.Errorf("delete relations of %s: %w", key, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catalog_entities WHERE tenant_id = $1 AND id = $2`, tenant, before.id); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: ref.Kind + ".deleted", ObjectKind: ref.Kind, ObjectID: key, Before: before.Entity})
	})
	if err != nil {
		return err
	}
	s.changed(tenant, Change{Action: "deleted", Ref: key})
	return nil
}

// pointingAt lists what keeps key in use: relations from other entities
// to it, and entities whose spec names it (queues and topics on a broker,
// sagas with a step calling a service).
func pointingAt(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, key string, e Entity) (relations, users []string, err error) {
	collect := func(q string, arg any) ([]string, error) {
		rows, err := tx.Query(ctx, q, tenant, arg)
		if err != nil {
			return nil, fmt.Errorf("what uses %s: %w", key, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, rows.Err()
	}
	relations, err = collect(`SELECT from_ref || ' ' || type || ' ' || to_ref FROM catalog_relations
		WHERE tenant_id = $1 AND to_ref = $2 AND from_ref <> $2 ORDER BY 1 LIMIT 20`, key)
	if err != nil {
		return nil, nil, err
	}
	switch e.Kind {
	case KindBroker:
		users, err = collect(`SELECT ref || ' is on it' FROM catalog_entities WHERE tenant_id = $1 AND kind IN ('queue', 'topic') AND spec->>'broker' = $2 ORDER BY ref LIMIT 20`, e.Name)
	case KindService:
		users, err = collect(`SELECT ref || ' has a step calling it' FROM catalog_entities WHERE tenant_id = $1 AND kind = 'saga'
			AND EXISTS (SELECT 1 FROM jsonb_array_elements(spec->'steps') st WHERE st->>'service' = $2) ORDER BY ref LIMIT 20`, e.Name)
	}
	return relations, users, err
}

// Credentials returns a broker's stored credentials, for the server's own
// connections to it (discovery, capture); never for an answer.
func (s *Store) Credentials(ctx context.Context, tenant uuid.UUID, broker string) (BrokerCredentials, error) {
	var creds BrokerCredentials
	var id uuid.UUID
	var sealed []byte
	found := false
	err := s.db.ReadTenant(ctx, tenant, `SELECT id, credentials FROM catalog_entities WHERE tenant_id = $1 AND ref = $2`,
		[]any{tenant, KindBroker + ":" + broker}, func(r pgx.Rows) error {
			found = true
			return r.Scan(&id, &sealed)
		})
	if err != nil {
		return creds, fmt.Errorf("read credentials of broker %s: %w", broker, err)
	}
	if !found {
		return creds, problem.NotFound(KindBroker, broker)
	}
	if len(sealed) == 0 {
		return creds, nil
	}
	if s.seal == nil {
		return creds, problem.Errorf(problem.CodeUnavailable, "this server has no secrets key, so it cannot open broker %q's credentials", broker)
	}
	plain, err := s.seal.Open(sealed, credsAAD(tenant, id))
	if err != nil {
		return creds, fmt.Errorf("open credentials of broker %s: %w", broker, err)
	}
	if err := json.Unmarshal(plain, &creds); err != nil {
		return creds, fmt.Errorf("read credentials of broker %s: %w", broker, err)
	}
	return creds, nil
}

// SetHealth records a service's health check result; the live hub hears
// of it when the status changed.
func (s *Store) SetHealth(ctx context.Context, tenant uuid.UUID, service string, h Health) error {
	var prev *string
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE catalog_entities c SET health = $3
			FROM (SELECT id, health->>'status' AS status FROM catalog_entities WHERE tenant_id = $1 AND ref = $2 FOR UPDATE) old
			WHERE c.tenant_id = $1 AND c.id = old.id RETURNING old.status`, tenant, KindService+":"+service, h).Scan(&prev)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // removed since the check began
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("record health of %s: %w", service, err)
	}
	if prev == nil || *prev != h.Status {
		s.changed(tenant, Change{Action: "health", Ref: KindService + ":" + service})
	}
	return nil
}

// HealthTarget is a service whose health the server checks.
type HealthTarget struct {
	Tenant   uuid.UUID
	Service  string
	URL      string
	Interval time.Duration
}

// HealthTargets lists every tenant's services with a health check. It
// reads across tenants, as the server itself (not a tenant's request).
func (s *Store) HealthTargets(ctx context.Context) ([]HealthTarget, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT tenant_id, name, spec->'health_check'->>'url', (spec->'health_check'->>'interval_seconds')::int
		FROM catalog_entities WHERE kind = 'service' AND spec->'health_check' IS NOT NULL AND spec->'health_check' <> 'null'`)
	if err != nil {
		return nil, fmt.Errorf("list health checks: %w", err)
	}
	defer rows.Close()
	var out []HealthTarget
	for rows.Next() {
		var t HealthTarget
		var secs int
		if err := rows.Scan(&t.Tenant, &t.Service, &t.URL, &secs); err != nil {
			return nil, err
		}
		t.Interval = time.Duration(secs) * time.Second
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetDrift records what the last discovery of broker found: each item on
// the entity it names (undeclared ones, which the catalog does not hold,
// on the broker), and clears the drift of the broker's other entities.
func (s *Store) SetDrift(ctx context.Context, tenant uuid.UUID, broker string, items []DriftItem) error {
	byRef := map[string][]DriftItem{}
	brokerRef := Ref{Kind: KindBroker, Name: broker}.String()
	for _, it := range items {
		ref := it.Ref
		if it.Kind == "undeclared" {
			ref = brokerRef
		}
		byRef[ref] = append(byRef[ref], it)
	}
	payload, err := json.Marshal(byRef)
	if err != nil {
		return err
	}
	err = s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE catalog_entities SET drift = $3::jsonb -> ref
			WHERE tenant_id = $1 AND (ref = $4 OR (kind IN ('queue', 'topic') AND spec->>'broker' = $2) OR $3::jsonb ? ref)`,
			tenant, broker, payload, brokerRef)
		return err
	})
	if err != nil {
		return fmt.Errorf("record drift of broker %s: %w", broker, err)
	}
	s.changed(tenant, Change{Action: "updated", Ref: brokerRef})
	return nil
}

// BrokerTarget is a broker that discovery can read.
type BrokerTarget struct {
	Tenant uuid.UUID
	Name   string
}

// Brokers lists every tenant's brokers that discovery can read (RabbitMQ
// with a management URL, Kafka). It reads across tenants, as the server.
func (s *Store) Brokers(ctx context.Context) ([]BrokerTarget, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT tenant_id, name FROM catalog_entities
		WHERE kind = 'broker' AND (spec->>'type' = 'kafka' OR coalesce(spec->>'management_url', '') <> '') ORDER BY tenant_id, name`)
	if err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}
	defer rows.Close()
	var out []BrokerTarget
	for rows.Next() {
		var b BrokerTarget
		if err := rows.Scan(&b.Tenant, &b.Name); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
