package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"switchboard/internal/problem"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "sb_session"

// Session is a signed-in browser.
type Session struct {
	UserID uuid.UUID
	Email  string
	Name   string
	// EmailVerified is false until the user follows a verification link;
	// the UI asks them to, and offers ResendVerification.
	EmailVerified bool
	// CSRF must accompany every state-changing request of this session.
	CSRF string
}

func randomToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	return base64.RawURLEncoding.EncodeToString(b), b, nil
}

// NewSession starts a session for user and returns the cookie value and the
// session's CSRF token.
func (s *Service) NewSession(ctx context.Context, user uuid.UUID) (cookie, csrf string, err error) {
	cookie, raw, err := randomToken()
	if err != nil {
		return "", "", err
	}
	if csrf, _, err = randomToken(); err != nil {
		return "", "", err
	}
	expires := s.cfg.Now().Add(s.cfg.SessionTTL)
	// Expired sessions are swept here, so the table stays as small as the
	// set of live sessions without a background job.
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM sessions WHERE expires_at < now()`)
	b.Queue(`INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)`, hashSecret(raw), user, csrf, expires)
	if err := s.db.Pool.SendBatch(ctx, b).Close(); err != nil {
		return "", "", fmt.Errorf("create session: %w", err)
	}
	return cookie, csrf, nil
}

// Session returns the live session for a cookie value, or an
// unauthenticated error.
func (s *Service) Session(ctx context.Context, cookie string) (Session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(raw) != 32 {
		return Session{}, unauthenticated()
	}
	var sess Session
	err = s.db.Pool.QueryRow(ctx, `SELECT s.user_id, u.email, u.name, u.email_verified_at IS NOT NULL, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1 AND s.expires_at > $2`, hashSecret(raw), s.cfg.Now()).Scan(&sess.UserID, &sess.Email, &sess.Name, &sess.EmailVerified, &sess.CSRF)
	if errors.Is(err, pgx.ErrNoRows) {
		// A cookie is a 32-byte random secret: one that matches no live
		// session was signed out of or ran out.
		return Session{}, problem.Errorf(problem.CodeUnauthenticated, "the session ended (signed out or expired); sign in again")
	}
	if err != nil {
		return Session{}, fmt.Errorf("load session: %w", err)
	}
	return sess, nil
}

// EndSession deletes the session for a cookie value, if any.
func (s *Service) EndSession(ctx context.Context, cookie string) error {
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		return nil // nothing that could be a session: nothing to end
	}
	if _, err := s.db.Pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, hashSecret(raw)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
