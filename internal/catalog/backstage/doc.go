// Package backstage reads and writes catalog files in Backstage's
// catalog-info.yaml format: a multi-document YAML stream of entities
// (Component, API, Resource, System, Domain, Group, User, Location,
// Template and any other kind). It is pure: no database, no HTTP.
//
// Parse maps documents to catalog entities and relations:
//   - Component is a service; a Resource is a queue, topic, broker or saga
//     when switchboard.io/kind or spec.type says so; any other kind keeps
//     its lower-cased name ("api", "system", "group", "user", ...).
//   - metadata (name, namespace, description, labels, annotations, links)
//     and spec.owner fill the entity; a group owner in the default
//     namespace is its team slug, any other owner its reference
//     ("user:jdoe", "group:partners/team-a").
//   - spec.dependsOn, providesApis, consumesApis, system, domain, parent
//     and memberOf are relations (depends_on, provides_api, consumes_api,
//     part_of, child_of, member_of), as are the relation annotations.
//     A Group's spec.children is not read (Backstage derives it from each
//     child's spec.parent); like every field, it is kept in Raw.
//   - Entity.Raw is the whole document as JSON, so what the catalog does
//     not model is kept and written back.
//
// The switchboard.io annotations (the table Annotations in annotations.go;
// lists are comma-separated):
//
//	switchboard.io/kind                      Resource: queue, topic, broker or saga
//	switchboard.io/endpoints                 service: URLs; protocol from the scheme or a protocol= prefix
//	switchboard.io/health-check-url          service: http(s) URL checked by the server
//	switchboard.io/health-check-interval     service: seconds (30 or 30s), 5-3600, default 30
//	switchboard.io/broker                    queue, topic: the broker's name (required)
//	switchboard.io/vhost                     queue, rabbitmq broker: virtual host
//	switchboard.io/dead-letter-exchange      queue
//	switchboard.io/dead-letter-queue         queue
//	switchboard.io/bindings                  queue: exchange=routing-key list
//	switchboard.io/partitions                topic: partition count (required)
//	switchboard.io/dead-letter-topic         topic
//	switchboard.io/broker-type               broker: rabbitmq or kafka (else spec.type)
//	switchboard.io/url                       rabbitmq broker: amqp(s) URL without credentials
//	switchboard.io/management-url            rabbitmq broker: management API URL
//	switchboard.io/bootstrap-servers         kafka broker: host:port list
//	switchboard.io/sasl-mechanism, sasl-username, tls, tls-server-name,
//	switchboard.io/tls-insecure-skip-verify  kafka broker connection settings
//	switchboard.io/calls, publishes, consumes, dead-letters-to
//	                                         relations Backstage has no field for
//	switchboard.io/depends-on, step-of, provides-api, consumes-api,
//	switchboard.io/part-of, member-of, child-of
//	                                         relations a Backstage field cannot hold
//
// A saga is a Resource with spec.type saga and spec.steps (name, service,
// action, compensation). Credentials never appear in a catalog file: a URL
// with user info is refused.
//
// References are catalog references: "kind:name" in the default namespace,
// "kind:namespace/name" otherwise, kinds lower-case; component:x is
// service:x, and resource:x is the native kind of the Resource document x
// in the same stream when there is one. References to entities the stream
// does not hold are kept.
//
// Invariants:
//   - Parse never panics and its cost is bounded by its input: the stream
//     size (Options.MaxBytes) and document count (Options.MaxDocuments)
//     are capped, YAML aliases may not expand a stream beyond about twice
//     its size, and nesting is capped.
//   - Every document is checked, and every error is reported with its
//     document index (0-based) and line (1-based), not only the first: a
//     broken document does not hide the errors of the others. Any error
//     means nothing may be applied.
//   - Parse(Export(Parse(x))) gives the same entities and relations as
//     Parse(x); Export is deterministic (ordered by kind, namespace, name)
//     and keeps an imported document's spelling wherever it still says
//     the same thing.
package backstage
