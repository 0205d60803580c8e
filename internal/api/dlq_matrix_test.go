package api_test

import (
	"fmt"

	"switchboard/internal/connectors/rabbitmq/rabbittest"
)

// The DLQ's rows of the authorization matrix. The DLQs belong to team core,
// which no tested editor or operator is in: everyone browses; settings are
// for editors and up; discarding and replaying for owners, admins and admin
// tokens (an operator only on their own teams' DLQs).
func init() {
	// Replays the server runs (an allowed cell's) move on by themselves:
	// what a refused request could change is the messages no replay took,
	// the number of replays, and the replays held elsewhere (newReplay).
	stateSQL["dlq_messages"] = `SELECT count(*) || ';' || coalesce(string_agg(tenant_id::text || ':' || id || ':' || status, ',' ORDER BY tenant_id, id)
		FILTER (WHERE NOT EXISTS (SELECT 1 FROM dlq_replay_items i WHERE i.tenant_id = m.tenant_id AND i.message_id = m.id)), '') FROM dlq_messages m`
	stateSQL["dlq_replays"] = `SELECT count(*) || ';' || coalesce(string_agg(tenant_id::text || ':' || id || ':' || state, ',' ORDER BY tenant_id, id)
		FILTER (WHERE runner = 'elsewhere'), '') FROM dlq_replays`
	stateSQL["dlq_settings"] = `SELECT coalesce(string_agg(tenant_id::text || ':' || dlq || ':' || paused || redaction::text, ',' ORDER BY tenant_id, dlq), '') FROM dlq_settings`
	all := [7]int{200, 200, 200, 200, 200, 200, 200}
	admins := [7]int{200, 200, 403, 403, 403, 403, 200}
	dlqPath := func(s *testServer, f *authzFixture, tenant, rest string) cell {
		return cell{tenantPath(tenant, "/dlq/"+f.newDLQ(s, tenant)+rest), nil}
	}
	withMessage := func(s *testServer, f *authzFixture, tenant string) (string, int64) {
		ref := f.newDLQ(s, tenant)
		return ref, f.newDeadLetter(s, tenant, ref)
	}
	replayIn := func(state string) func(s *testServer, f *authzFixture, tenant string) (string, string) {
		return func(s *testServer, f *authzFixture, tenant string) (string, string) {
			ref, _ := withMessage(s, f, tenant)
			return ref, f.newReplay(s, tenant, ref, state)
		}
	}
	matrix = append(matrix,
		matrixRow{"GET", "/dlq", all, fixed("/dlq", nil)},
		matrixRow{"GET", "/dlq/:ref", all, func(s *testServer, f *authzFixture, tenant string) cell { return dlqPath(s, f, tenant, "") }},
		matrixRow{"PATCH", "/dlq/:ref", [7]int{200, 200, 200, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
			c := dlqPath(s, f, tenant, "")
			c.body = map[string]any{"paused": true}
			return c
		}},
		matrixRow{"GET", "/dlq/:ref/messages", all, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, _ := withMessage(s, f, tenant)
			return cell{tenantPath(tenant, "/dlq/"+ref+"/messages"), nil}
		}},
		matrixRow{"GET", "/dlq/:ref/messages/:id", all, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, id := withMessage(s, f, tenant)
			return cell{tenantPath(tenant, fmt.Sprintf("/dlq/%s/messages/%d", ref, id)), nil}
		}},
		// The fixture's DLQ is a RabbitMQ queue: read in place, it is a 422
		// once the read is allowed.
		matrixRow{"GET", "/dlq/:ref/records", [7]int{422, 422, 422, 422, 422, 422, 422}, func(s *testServer, f *authzFixture, tenant string) cell {
			return dlqPath(s, f, tenant, "/records")
		}},
		matrixRow{"GET", "/dlq/:ref/groups", all, func(s *testServer, f *authzFixture, tenant string) cell { return dlqPath(s, f, tenant, "/groups") }},
		matrixRow{"POST", "/dlq/:ref/discard", admins, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, id := withMessage(s, f, tenant)
			return cell{tenantPath(tenant, "/dlq/"+ref+"/discard"), map[string]any{"message_ids": []int64{id}, "confirm": true}}
		}},
		matrixRow{"POST", "/dlq/:ref/replays", [7]int{202, 202, 403, 403, 403, 403, 202}, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, id := withMessage(s, f, tenant)
			return cell{tenantPath(tenant, "/dlq/"+ref+"/replays"), map[string]any{"message_ids": []int64{id}}}
		}},
		matrixRow{"GET", "/dlq/:ref/replays", all, func(s *testServer, f *authzFixture, tenant string) cell { return dlqPath(s, f, tenant, "/replays") }},
		matrixRow{"GET", "/dlq/:ref/replays/:id", all, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, id := replayIn("running")(s, f, tenant)
			return cell{tenantPath(tenant, "/dlq/"+ref+"/replays/"+id), nil}
		}},
		matrixRow{"GET", "/dlq/:ref/live", [7]int{400, 400, 400, 400, 400, 400, 400}, func(s *testServer, f *authzFixture, tenant string) cell {
			return dlqPath(s, f, tenant, "/live")
		}},
		// Setting up dead-lettering changes the queue: as PATCH does. An
		// allowed cell declares on the machine's RabbitMQ what is deleted
		// when the test ends.
		matrixRow{"POST", "/queues/:name/dead-lettering", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
			name := rabbittest.Name("cell-dl-")
			rabbittest.DeleteDeadLettering(s.t, name)
			s.must(201, "POST", tenantPath(tenant, "/queues"), f.owner[tenant], map[string]any{"name": name, "broker": f.newBroker(s, tenant, "rabbitmq"), "owner_team": "core"})
			return cell{tenantPath(tenant, "/queues/"+name+"/dead-lettering"), nil}
		}},
	)
	for action, from := range map[string]string{"pause": "running", "resume": "paused", "cancel": "running"} {
		matrix = append(matrix, matrixRow{"POST", "/dlq/:ref/replays/:id/" + action, admins, func(s *testServer, f *authzFixture, tenant string) cell {
			ref, id := replayIn(from)(s, f, tenant)
			return cell{tenantPath(tenant, "/dlq/"+ref+"/replays/"+id+"/"+action), nil}
		}})
	}
}

// newDLQ registers, in tenant, a queue and its DLQ owned by team core (on
// a RabbitMQ broker entry; nothing is declared on a broker) and returns the
// DLQ's ref.
func (f *authzFixture) newDLQ(s *testServer, tenant string) string {
	s.t.Helper()
	broker := f.newBroker(s, tenant, "rabbitmq")
	name := fmt.Sprintf("cell-%d", f.next())
	s.must(201, "POST", tenantPath(tenant, "/queues"), f.owner[tenant], map[string]any{"name": name + ".dlq", "broker": broker, "owner_team": "core"})
	s.must(201, "POST", tenantPath(tenant, "/queues"), f.owner[tenant], map[string]any{"name": name, "broker": broker, "owner_team": "core", "dead_letter_queue": name + ".dlq"})
	return "queue:" + name + ".dlq"
}

// newDeadLetter stores a captured message in tenant's DLQ ref, as capture
// would, and returns its id.
func (f *authzFixture) newDeadLetter(s *testServer, tenant, ref string) int64 {
	s.t.Helper()
	var id int64
	err := s.DB.Pool.QueryRow(s.t.Context(), `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, body, body_size, original_queue, reason)
		SELECT id, $2, gen_random_uuid()::text::bytea, 'payload', 7, 'nowhere', 'rejected' FROM tenants WHERE slug = $1 RETURNING id`, tenant, ref).Scan(&id)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

// newReplay makes a replay of every dead letter of ref in state (running
// or paused), held by a replica that is not this server's, so that it
// stays as made.
func (f *authzFixture) newReplay(s *testServer, tenant, ref, state string) string {
	s.t.Helper()
	var id string
	err := s.DB.Pool.QueryRow(s.t.Context(), `WITH job AS (
			INSERT INTO dlq_replays (tenant_id, dlq, state, request, runner, lease_until, total)
			SELECT id, $2, $3, '{"message_ids": [1]}', 'elsewhere', now() + interval '1 hour', 1 FROM tenants WHERE slug = $1 RETURNING tenant_id, id)
		SELECT id::text FROM job`, tenant, ref, state).Scan(&id)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}
