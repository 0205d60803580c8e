// Package egress guards the server's own outbound connections (broker
// discovery, health checks) against a deny-list of networks, so a URL a
// tenant registers cannot make the server reach what it must not (cloud
// metadata, the private network of a hosted deployment).
//
// Invariants:
//   - The check is made on the addresses a name resolves to, and the
//     connection goes to the address that was checked: a second DNS answer
//     cannot slip past between check and dial. Every address a name
//     resolves to must pass.
//   - IPv4-mapped IPv6 addresses are checked as IPv4.
//   - An empty list allows everything (self-hosted brokers live on
//     private networks).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"switchboard/internal/problem"
)

// EnvVar is the setting that holds the deny-list: CIDRs or addresses,
// comma-separated.
const EnvVar = "SWITCHBOARD_EGRESS_DENY"

// ErrDenied is wrapped by every refusal.
var ErrDenied = errors.New("egress: address on the deny-list")

// Guard refuses connections to the networks of its list.
type Guard struct {
	deny     []netip.Prefix
	resolver *net.Resolver
	dialer   net.Dialer
}

// New returns a guard refusing the networks of deny (CIDRs or single
// addresses).
func New(deny []string) (*Guard, error) {
	g := &Guard{resolver: net.DefaultResolver, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	for _, s := range deny {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a CIDR or an address", EnvVar, s)
			}
			g.deny = append(g.deny, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR or an address", EnvVar, s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		g.deny = append(g.deny, p.Masked())
	}
	return g, nil
}

// ParseList splits a setting's comma-separated list.
func ParseList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (g *Guard) denied(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.deny {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve returns the addresses of host, refusing when any is denied.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		addrs = ips
	}
	for _, a := range addrs {
		if g.denied(a) {
			return nil, &problem.Error{Code: problem.CodeUnprocessable,
				Message: fmt.Sprintf("host %q resolves to %s, which the egress deny-list refuses", host, a.Unmap())}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("host %q has no address", host)
	}
	return addrs, nil
}

// DialContext connects to addr (host:port) when no address of host is
// denied, to an address it checked.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var first error
	for _, a := range addrs {
		c, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// IsDenied reports whether err is a refusal of the deny-list.
func IsDenied(err error) bool {
	pe, ok := problem.As(err)
	return ok && strings.Contains(pe.Message, "egress deny-list")
}

// HTTPClient returns a client whose every connection, redirects included,
// passes the guard; it ignores proxy settings of the environment and
// follows at most 5 redirects.
func (g *Guard) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         g.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
}

// CheckURL refuses (422) a URL whose host resolves to a denied address, so
// a tenant learns it when saving, not at the first check. A host that does
// not resolve now is let through: the connection is checked again when it
// is made.
func (g *Guard) CheckURL(ctx context.Context, host string) error {
	if len(g.deny) == 0 || host == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := g.resolve(ctx, host); IsDenied(err) {
		return err
	}
	return nil
}
