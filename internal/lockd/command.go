package lockd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// cmdType names a state machine command. Values are stored in the Raft log:
// never renumber them.
type cmdType uint8

const (
	// cmdAcquire grants a free lease or queues the caller (Wait > 0).
	cmdAcquire cmdType = 1
	// cmdRenew sets a live lease's expiry to Now+TTL.
	cmdRenew cmdType = 2
	// cmdRelease ends a lease and grants the next live waiter.
	cmdRelease cmdType = 3
	// cmdCancelWait removes a queued waiter whose wait ran out.
	cmdCancelWait cmdType = 4
	// cmdExpire settles the listed leases as of Now: leases past their expiry
	// end, waiters past their deadline leave. Proposed by the leader only.
	cmdExpire cmdType = 5
	// cmdPromote is the first command of every new leader: it extends every
	// lease to at least Now+Grace.
	cmdPromote cmdType = 6
	// cmdPut writes a key, subject to IfRevision / IfAbsent.
	cmdPut cmdType = 7
	// cmdDelete removes a key, subject to IfRevision.
	cmdDelete cmdType = 8
)

func (t cmdType) String() string {
	switch t {
	case cmdAcquire:
		return "acquire"
	case cmdRenew:
		return "renew"
	case cmdRelease:
		return "release"
	case cmdCancelWait:
		return "cancel-wait"
	case cmdExpire:
		return "expire"
	case cmdPromote:
		return "promote"
	case cmdPut:
		return "put"
	case cmdDelete:
		return "delete"
	}
	return fmt.Sprintf("cmd(%d)", uint8(t))
}

// leaseKind separates the lock and election name spaces, which share one
// lease table and one set of rules.
type leaseKind uint8

const (
	kindLock     leaseKind = 1
	kindElection leaseKind = 2
)

func (k leaseKind) valid() bool { return k == kindLock || k == kindElection }

func (k leaseKind) String() string {
	if k == kindElection {
		return "election"
	}
	return "lock"
}

// commandVersion is the first byte of every log entry this package writes.
// Version 2 entries number each tenant's changes with the tenant's own
// revision counter. Version 1 entries were written by earlier versions,
// which numbered every change with the entry's Raft index; Apply still
// numbers them that way, so replaying a log that spans an upgrade hands out
// the very numbers those versions did (see fsm.revise).
const (
	commandVersion       byte = 2
	legacyCommandVersion byte = 1
)

// maxTokenLen bounds lease tokens and waiter request ids (we write 32 hex
// characters; the bound only guards decoding).
const maxTokenLen = 64

// command is one replicated state machine input: a tagged union whose Type
// says which fields matter. Everything Apply needs is in it, "now" included,
// so replaying the log anywhere yields the same state.
type command struct {
	Type cmdType `json:"t"`
	// Now is the proposing leader's clock in Unix nanoseconds. It is the only
	// time Apply ever sees.
	Now int64 `json:"now"`

	Kind    leaseKind `json:"k,omitempty"`
	Tenant  uuid.UUID `json:"ten"`
	Name    string    `json:"n,omitempty"` // lease name or KV key
	Owner   string    `json:"o,omitempty"` // lock owner or election candidate
	Token   string    `json:"tok,omitempty"`
	Request string    `json:"req,omitempty"` // waiter id of a queued acquire
	TTL     int64     `json:"ttl,omitempty"` // ns
	Wait    int64     `json:"wait,omitempty"`
	Grace   int64     `json:"grace,omitempty"`

	Keys []leaseRef `json:"keys,omitempty"`

	Value      []byte `json:"v,omitempty"`
	IfRevision uint64 `json:"ifrev,omitempty"`
	IfAbsent   bool   `json:"ifabs,omitempty"`
}

// leaseRef names one lease in an expiry command.
type leaseRef struct {
	Kind   leaseKind `json:"k"`
	Tenant uuid.UUID `json:"ten"`
	Name   string    `json:"n"`
}

func (r leaseRef) key() leaseKey { return leaseKey(r) }

// encodeCommand serialises c: a version byte, then JSON. JSON costs about a
// microsecond per command, far below one fsync, and keeps log entries
// readable when debugging.
func encodeCommand(c command) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(commandVersion)
	if err := json.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeCommand parses and checks a log entry of either version (both share
// the JSON form; only the numbering Apply gives the entry differs). It never
// panics; any entry it returns satisfies command.check.
func decodeCommand(data []byte) (command, error) {
	var c command
	if len(data) < 2 {
		return c, errors.New("command too short")
	}
	if data[0] != commandVersion && data[0] != legacyCommandVersion {
		return c, fmt.Errorf("unknown command version %d", data[0])
	}
	dec := json.NewDecoder(bytes.NewReader(data[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return command{}, fmt.Errorf("decode command: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return command{}, errors.New("decode command: trailing data")
	}
	if err := c.check(); err != nil {
		return command{}, fmt.Errorf("%s command: %w", c.Type, err)
	}
	return c, nil
}

// check validates a command's fields for its type. The leader validates
// requests before proposing; this second check makes Apply total over any
// bytes the log may hold.
func (c command) check() error {
	if c.Now <= 0 {
		return errors.New("no timestamp")
	}
	leaseFields := func(needOwner bool) error {
		switch {
		case !c.Kind.valid():
			return errors.New("bad kind")
		case c.Tenant == uuid.Nil:
			return errors.New("no tenant")
		case !validName(c.Name):
			return errors.New("bad name")
		case needOwner && !validName(c.Owner):
			return errors.New("bad owner")
		case !validToken(c.Token):
			return errors.New("bad token")
		}
		return nil
	}
	ttlOK := c.TTL >= int64(MinTTL) && c.TTL <= int64(MaxTTL)
	switch c.Type {
	case cmdAcquire:
		if err := leaseFields(true); err != nil {
			return err
		}
		if !ttlOK || c.Wait < 0 || c.Wait > int64(MaxWait) {
			return errors.New("ttl or wait out of range")
		}
		if c.Wait > 0 && !validToken(c.Request) {
			return errors.New("a waiting acquire needs a request id")
		}
	case cmdRenew:
		if err := leaseFields(false); err != nil {
			return err
		}
		if !ttlOK {
			return errors.New("ttl out of range")
		}
	case cmdRelease:
		return leaseFields(false)
	case cmdCancelWait:
		if err := leaseFields(false); err != nil {
			return err
		}
		if !validToken(c.Request) {
			return errors.New("bad request id")
		}
	case cmdExpire:
		if len(c.Keys) == 0 || len(c.Keys) > maxExpireSet {
			return errors.New("expire needs 1..512 keys")
		}
		for _, k := range c.Keys {
			if !k.Kind.valid() || k.Tenant == uuid.Nil || !validName(k.Name) {
				return errors.New("bad key")
			}
		}
	case cmdPromote:
		if c.Grace <= 0 || c.Grace > int64(MaxTTL) {
			return errors.New("grace out of range")
		}
	case cmdPut:
		if c.Tenant == uuid.Nil || !validName(c.Name) {
			return errors.New("bad key")
		}
		if len(c.Value) > MaxValueLen {
			return errors.New("value too large")
		}
		if c.IfAbsent && c.IfRevision != 0 {
			return errors.New("IfAbsent and IfRevision exclude each other")
		}
	case cmdDelete:
		if c.Tenant == uuid.Nil || !validName(c.Name) {
			return errors.New("bad key")
		}
	default:
		return fmt.Errorf("unknown command type %d", c.Type)
	}
	return nil
}

// nsToTime turns a stored Unix-nanosecond instant into a time.Time.
func nsToTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
