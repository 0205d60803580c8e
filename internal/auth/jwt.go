package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// Audience is the aud claim of every access token.
const Audience = "switchboard-api"

// LoadSigningKey returns the Ed25519 key for access tokens: from seedB64 (the
// base64 of a 32-byte seed) when given, else from the PEM file at path,
// which is created on first use.
func LoadSigningKey(seedB64, path string) (ed25519.PrivateKey, error) {
	if seedB64 != "" {
		seed, err := base64.StdEncoding.DecodeString(seedB64)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, errors.New("SWITCHBOARD_JWT_KEY must be the base64 of a 32-byte Ed25519 seed")
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if b, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%s: not a PEM file", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 key", path)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// issueJWT signs an access token for user.
func (s *Service) issueJWT(user uuid.UUID, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    s.cfg.Issuer,
		Subject:   user.String(),
		Audience:  jwt.ClaimStrings{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
		ID:        uuid.NewString(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(s.cfg.Key)
}

// verifyJWT returns the user an access token was issued to.
func (s *Service) verifyJWT(token string) (uuid.UUID, error) {
	// A token verified once is known until it expires: its signature and
	// claims cannot change.
	key := credentialKey(token)
	if id, ok := s.rights.jwt(key, time.Now()); ok {
		return id, nil
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return s.cfg.Key.Public(), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil {
		return uuid.Nil, problem.Errorf(problem.CodeUnauthenticated, "the access token is invalid or expired")
	}
	id, err := uuid.Parse(claims.Subject)
	if err != nil {
		return uuid.Nil, problem.Errorf(problem.CodeUnauthenticated, "the access token is invalid or expired")
	}
	s.rights.putJWT(key, id, claims.ExpiresAt.Add(5*time.Second))
	return id, nil
}
