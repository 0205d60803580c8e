package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/mail"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// A verification token is base64url(payload || mac):
//
//	payload = version (1) | user id (16) | expiry, unix seconds (8) | nonce (16)
//	mac     = HMAC-SHA256(verifyKey, label | payload | 0 | lower(email))
//
// The user's address is in the MAC but not in the token: a link stops
// working when the address changes, and does not show the address in logs
// or browser history. The nonce makes the link single-use: it is recorded
// in email_verification_uses when the link is followed.
const (
	verifyVersion    = 1
	verifyPayloadLen = 1 + 16 + 8 + 16
	verifyTokenLen   = verifyPayloadLen + sha256.Size
	verifyLabel      = "switchboard verify email v1\x00"
)

func (s *Service) verifyMAC(payload []byte, email string) []byte {
	h := hmac.New(sha256.New, s.verifyKey)
	h.Write([]byte(verifyLabel))
	h.Write(payload)
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(email)))
	return h.Sum(nil)
}

// newVerifyToken returns a token proving u's current address until the
// configured lifetime ends.
func (s *Service) newVerifyToken(u tenancy.User) (string, error) {
	p := make([]byte, verifyPayloadLen)
	p[0] = verifyVersion
	copy(p[1:17], u.ID[:])
	binary.BigEndian.PutUint64(p[17:25], uint64(s.cfg.Now().Add(s.cfg.VerifyTTL).Unix()))
	if _, err := rand.Read(p[25:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(p, s.verifyMAC(p, u.Email)...)), nil
}

func (s *Service) verifyLink(token string) string {
	return s.cfg.BaseURL + s.cfg.VerifyPath + "?token=" + url.QueryEscape(token)
}

func badLink(why string) error {
	return problem.Errorf(problem.CodeInvalid, "this verification link %s", why)
}

// Verification is the outcome of following a verification link.
type Verification struct {
	User   tenancy.User     // now verified
	Joined []tenancy.Tenant // tenants whose invitations became memberships
}

// VerifyEmail follows a verification link's token: it checks the signature
// against the user's current address and the expiry, spends the link (a
// second use fails), marks the user verified and turns the address's
// pending invitations into memberships (audited member.joined in each
// tenant, with the user as actor). A bad, expired, spent or outdated link is
// invalid, with a message saying which.
func (s *Service) VerifyEmail(ctx context.Context, token string) (Verification, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != verifyTokenLen || raw[0] != verifyVersion {
		return Verification{}, badLink("is not valid")
	}
	payload, mac := raw[:verifyPayloadLen], raw[verifyPayloadLen:]
	userID, _ := uuid.FromBytes(payload[1:17]) // 16 bytes: cannot fail
	expires := time.Unix(int64(binary.BigEndian.Uint64(payload[17:25])), 0)
	nonce := payload[25:]

	var email string
	err = s.db.Pool.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, userID).Scan(&email)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Verification{}, fmt.Errorf("verify email: %w", err)
	}
	// A user that is gone and an address that changed fail like a forgery:
	// the MAC is over the current address.
	if errors.Is(err, pgx.ErrNoRows) || !hmac.Equal(mac, s.verifyMAC(payload, email)) {
		return Verification{}, badLink("is not valid (or the account's address has changed)")
	}
	if !s.cfg.Now().Before(expires) {
		return Verification{}, badLink("has expired; sign in and ask for a new one")
	}
	var v Verification
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO email_verification_uses (nonce, user_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			nonce, userID, expires)
		if err != nil {
			return fmt.Errorf("spend verification link: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return badLink("has already been used")
		}
		ctx := audit.WithActor(ctx, withActorID(audit.ActorFrom(ctx), tenancy.User{ID: userID, Email: email}))
		v.User, v.Joined, err = tenancy.VerifyUserTx(ctx, tx, userID, email)
		if problem.Code(err) == problem.CodeNotFound {
			return badLink("is not valid (or the account's address has changed)")
		}
		return err
	})
	if err != nil {
		return Verification{}, err
	}
	return v, nil
}

// ResendVerification mails user a fresh verification link. It is limited
// like sign-up mail to the same address (rate_limited); an address already
// verified is a conflict.
func (s *Service) ResendVerification(ctx context.Context, user uuid.UUID) error {
	u, err := s.tenancy.User(ctx, user)
	if problem.Code(err) == problem.CodeNotFound {
		return unauthenticated()
	}
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return problem.Errorf(problem.CodeConflict, "%s is already verified", u.Email)
	}
	if err := s.allow(ctx, s.mailTo, strings.ToLower(u.Email), "messages to this address"); err != nil {
		return err
	}
	msg, err := s.verificationMail(u)
	if err != nil {
		return err
	}
	if err := s.cfg.Mail.Send(msg); err != nil {
		e := problem.Errorf(problem.CodeUnavailable, "the message could not be queued; try again in a minute")
		e.RetryAfter = 60
		return e
	}
	return nil
}

// IsOperator reports whether user has the platform's operator rights: their
// address is listed in Config.Operators and they proved it. An unverified
// account with a listed address gets nothing: anyone could have signed up
// with it.
func (s *Service) IsOperator(ctx context.Context, user uuid.UUID) (bool, error) {
	if len(s.operators) == 0 {
		return false, nil
	}
	var email string
	var verified bool
	err := s.db.Pool.QueryRow(ctx, `SELECT email, email_verified_at IS NOT NULL FROM users WHERE id = $1`, user).Scan(&email, &verified)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is operator: %w", err)
	}
	return verified && s.operators[strings.ToLower(email)], nil
}

// SweepVerifications forgets spent verification links that have expired
// (they fail on their expiry anyway); run it every hour or so.
func (s *Service) SweepVerifications(ctx context.Context) (int64, error) {
	tag, err := s.db.Pool.Exec(ctx, `DELETE FROM email_verification_uses WHERE expires_at < now()`)
	return tag.RowsAffected(), err
}

// The messages. They never repeat what a sign-up form was given (a name, a
// tenant): whoever signs up with someone else's address must not be able to
// write into that person's mailbox.

func (s *Service) verificationMail(u tenancy.User) (mail.Message, error) {
	token, err := s.newVerifyToken(u)
	if err != nil {
		return mail.Message{}, err
	}
	link := s.verifyLink(token)
	return mail.Message{
		To:      u.Email,
		Subject: "Confirm your email address for Switchboard",
		Link:    link,
		Text: "Someone, we hope you, signed up for Switchboard with this address.\n\n" +
			"To confirm that it is yours, open this link within " + humanDuration(s.cfg.VerifyTTL) + ":\n\n" +
			link + "\n\n" +
			"Until then the account can sign in and use the organisations it created,\n" +
			"but invitations to this address wait for the confirmation.\n\n" +
			"If you did not sign up, ignore this message; the account stays unconfirmed.\n",
	}, nil
}

func (s *Service) knownAddressMail(email string) mail.Message {
	link := s.cfg.BaseURL + s.cfg.SignInPath
	return mail.Message{
		To:      email,
		Subject: "Someone tried to sign up to Switchboard with your address",
		Link:    link,
		Text: "Someone tried to sign up for Switchboard with this address, which already\n" +
			"has an account. Nothing was changed.\n\n" +
			"If it was you, sign in instead:\n\n" +
			link + "\n\n" +
			"If it was not you, you can ignore this message.\n",
	}
}

func humanDuration(d time.Duration) string {
	n, unit := int64(d/time.Minute), "minute"
	switch {
	case d%(24*time.Hour) == 0:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", max(n, 1), unit)
}
