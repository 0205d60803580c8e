// Package catalog owns what a tenant's teams declare: services, brokers,
// queues, topics and sagas (and the kinds an import brings), the typed
// relations between them, the topology graph drawn from both, and the
// problems found on that graph.
//
// Invariants:
//   - Every read and write is scoped to one tenant (row-level security is
//     the second wall); another tenant's entity is not found.
//   - Every decision on an entity is made on the entity as loaded, inside
//     the transaction that then changes it: its owning team and labels,
//     and for a change of owner or labels, the entity as it would become.
//   - An entity's kind and name never change; relations refer to entities
//     by reference (kind:name, kind:namespace/name), so an import may keep
//     a reference to an entity the catalog does not hold.
//   - Broker credentials are sealed at rest with the tenant and entity ids
//     as associated data; no answer, log or audit entry holds them.
//   - An import applies all or nothing and never deletes: entities its
//     source no longer holds are marked orphaned.
package catalog
