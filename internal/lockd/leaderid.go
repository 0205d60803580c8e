package lockd

import "github.com/hashicorp/raft"

// LeaderID is what a request router needs, read without a round through
// Raft's main loop: this node's id when it leads (self true), the id of the
// leader it follows, or "" while no leader is known.
func (n *Node) LeaderID() (id string, self bool) {
	if n.raft.State() == raft.Leader {
		return n.cfg.NodeID, true
	}
	_, lid := n.raft.LeaderWithID()
	return string(lid), false
}
