package api_test

import (
	"fmt"
	"strings"
)

// The catalog's rows of the authorization matrix: everyone reads; an
// entity owned by team core is changed by owners, admins and admin tokens,
// not by an editor who is in no team.
func init() {
	stateSQL["catalog_entities"] = `SELECT coalesce(string_agg(tenant_id::text || ':' || ref || ':' || version, ',' ORDER BY tenant_id, ref), '') FROM catalog_entities`
	stateSQL["catalog_relations"] = `SELECT coalesce(string_agg(tenant_id::text || ':' || from_ref || type || to_ref, ',' ORDER BY tenant_id, from_ref, type, to_ref), '') FROM catalog_relations`
	all := [7]int{200, 200, 200, 200, 200, 200, 200}
	for _, kind := range []string{"service", "broker", "queue", "topic", "saga"} {
		path := "/" + kind + "s"
		matrix = append(matrix,
			matrixRow{"GET", path, all, fixed(path, nil)},
			matrixRow{"POST", path, [7]int{201, 201, 403, 403, 403, 403, 201}, func(s *testServer, f *authzFixture, tenant string) cell {
				name := fmt.Sprintf("cell-%d", f.next())
				return cell{tenantPath(tenant, path), entityBody(s, f, tenant, kind, name)}
			}},
			matrixRow{"GET", path + "/:name", all, func(s *testServer, f *authzFixture, tenant string) cell {
				return cell{tenantPath(tenant, path+"/"+f.newEntity(s, tenant, kind)), nil}
			}},
			matrixRow{"PATCH", path + "/:name", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
				return cell{tenantPath(tenant, path+"/"+f.newEntity(s, tenant, kind)), map[string]any{"description": "changed"}}
			}},
			matrixRow{"DELETE", path + "/:name", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
				return cell{tenantPath(tenant, path+"/"+f.newEntity(s, tenant, kind)), nil}
			}},
		)
	}
	relation := func(s *testServer, f *authzFixture, tenant string) map[string]string {
		return map[string]string{"from": "service:" + f.newEntity(s, tenant, "service"), "type": "calls", "to": "service:" + f.newEntity(s, tenant, "service")}
	}
	matrix = append(matrix,
		matrixRow{"GET", "/relations", all, fixed("/relations", nil)},
		matrixRow{"POST", "/relations", [7]int{201, 201, 403, 403, 403, 403, 201}, func(s *testServer, f *authzFixture, tenant string) cell {
			return cell{tenantPath(tenant, "/relations"), relation(s, f, tenant)}
		}},
		matrixRow{"DELETE", "/relations", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
			r := relation(s, f, tenant)
			s.must(201, "POST", tenantPath(tenant, "/relations"), f.owner[tenant], r)
			return cell{tenantPath(tenant, "/relations"), r}
		}},
		matrixRow{"GET", "/topology", all, fixed("/topology", nil)},
		matrixRow{"GET", "/problems", all, fixed("/problems", nil)},
		matrixRow{"GET", "/catalog/live", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/catalog/live", nil)},
		matrixRow{"GET", "/catalog/export", all, fixed("/catalog/export", nil)},
		matrixRow{"GET", "/catalog/imports", all, fixed("/catalog/imports", nil)},
		matrixRow{"POST", "/catalog/import", [7]int{200, 200, 403, 403, 403, 403, 200}, func(_ *testServer, f *authzFixture, tenant string) cell {
			return cell{tenantPath(tenant, "/catalog/import?source=cell"), yamlBody(fmt.Sprintf(
				"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: cell-%d\nspec:\n  type: service\n  owner: core\n", f.next()))}
		}},
		matrixRow{"GET", "/brokers/:name/discover", all, func(s *testServer, f *authzFixture, tenant string) cell {
			return cell{tenantPath(tenant, "/brokers/"+f.newKafka(s, tenant)+"/discover"), nil}
		}},
		matrixRow{"POST", "/brokers/:name/discover/import", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
			return cell{tenantPath(tenant, "/brokers/"+f.newKafka(s, tenant)+"/discover/import"), nil}
		}},
	)
}

// entityBody is a valid body for a new entity of kind owned by team core,
// creating in tenant what it needs (a broker, a service).
func entityBody(s *testServer, f *authzFixture, tenant, kind, name string) map[string]any {
	b := map[string]any{"name": name, "owner_team": "core"}
	switch kind {
	case "broker":
		b["kind"], b["url"] = "rabbitmq", "amqp://127.0.0.1:5672/"
	case "queue":
		b["broker"] = f.newBroker(s, tenant, "rabbitmq")
	case "topic":
		b["broker"], b["partitions"] = f.newBroker(s, tenant, "kafka"), 3
	case "saga":
		b["steps"] = []map[string]string{{"name": "pay", "service": f.newEntity(s, tenant, "service"), "action": "charge", "compensation": "refund"}}
	}
	return b
}

func (f *authzFixture) newBroker(s *testServer, tenant, typ string) string {
	s.t.Helper()
	name := fmt.Sprintf("cell-%d", f.next())
	b := map[string]any{"name": name, "owner_team": "core", "kind": typ}
	if typ == "kafka" {
		b["bootstrap_servers"] = []string{"127.0.0.1:9092"}
	} else {
		b["url"] = "amqp://127.0.0.1:5672/"
	}
	s.must(201, "POST", tenantPath(tenant, "/brokers"), f.owner[tenant], b)
	return name
}

// newKafka registers a kafka broker on a fresh in-process cluster that
// holds one topic.
func (f *authzFixture) newKafka(s *testServer, tenant string) string {
	s.t.Helper()
	seeds := kafkaCluster(s.t)
	name := fmt.Sprintf("cell-%d", f.next())
	s.must(201, "POST", tenantPath(tenant, "/brokers"), f.owner[tenant], map[string]any{"name": name, "owner_team": "core", "kind": "kafka", "bootstrap_servers": seeds})
	return name
}

// newEntity registers a fresh entity of kind in tenant, owned by core.
func (f *authzFixture) newEntity(s *testServer, tenant, kind string) string {
	s.t.Helper()
	name := fmt.Sprintf("cell-%d", f.next())
	s.must(201, "POST", tenantPath(tenant, "/"+strings.TrimSuffix(kind, "s")+"s"), f.owner[tenant], entityBody(s, f, tenant, kind, name))
	return name
}
