package discovery

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"switchboard/internal/problem"
)

// errRefusedCredentials marks a broker's refusal of the credentials it was
// given, so both broker kinds answer it with the same words.
var errRefusedCredentials = errors.New("credentials refused")

// brokerError turns a failed read of broker name into the error callers
// see. Application errors (an egress rule refusing the address, a bad
// setting) pass through unchanged; anything else is CodeBadGateway with a
// reason that holds no secret: secrets lists the strings (passwords) that
// must never appear in it.
func brokerError(ctx context.Context, name string, err error, secrets ...string) error {
	if p, ok := problem.As(err); ok {
		return p
	}
	if errors.Is(err, errRefusedCredentials) {
		return problem.Errorf(problem.CodeBadGateway, "broker %q: the broker refused the stored credentials", name)
	}
	return problem.Errorf(problem.CodeBadGateway, "broker %q did not answer: %s", name, scrub(reason(ctx, err), secrets))
}

// reason says in a few words why a broker did not answer. It prefers the
// innermost network error, whose text holds neither URL nor credentials.
func reason(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errBound) {
			return "no answer within " + DefaultTimeout.String()
		}
		if ctx.Err() != nil {
			return "no answer before the request ended"
		}
		return "no answer in time"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "host " + dns.Name + " not found"
		}
		return "host " + dns.Name + " could not be resolved"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		what := op.Err.Error()
		if op.Addr != nil {
			return op.Op + " " + op.Addr.String() + ": " + what
		}
		return op.Op + ": " + what
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// scrub removes every secret from msg, in case a library echoed one.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// errBound is the cause of a context that ran out of DefaultTimeout, to tell
// it from the caller's own deadline.
var errBound = errors.New("discovery bound reached")

// bounded returns ctx limited to DefaultTimeout (or ctx's own deadline when
// sooner).
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, DefaultTimeout, errBound)
}
