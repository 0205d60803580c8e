package secrets

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// EnvVar is the setting that holds the keys ("id:base64key,...", the first
// seals); without it the keys live in KeyFile under the data directory.
const EnvVar = "SWITCHBOARD_SECRET_KEYS"

// KeyFile is the file, under the data directory, that holds the keys when
// EnvVar is empty: one "id:base64key" per line, the first seals.
const KeyFile = "secret-keys"

// version is the format of a sealed value: version, key id length, key id,
// nonce, ciphertext and tag.
const version = 1

// Key is one named AES-256 key.
type Key struct {
	ID     string
	Secret []byte // 32 bytes
}

// Keyring seals with its first key and opens with any.
type Keyring struct {
	seal  string                 // id of the key that seals
	aeads map[string]cipher.AEAD // by key id
}

var keyID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ErrOpen is wrapped by every failure to open a sealed value.
var ErrOpen = errors.New("secrets: cannot open sealed value")

// New returns a keyring of keys; the first seals.
func New(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secrets: a keyring needs at least one key")
	}
	k := &Keyring{seal: keys[0].ID, aeads: map[string]cipher.AEAD{}}
	for _, key := range keys {
		if !keyID.MatchString(key.ID) {
			return nil, fmt.Errorf("secrets: key id %q must be 1-32 lower-case letters, digits and '-'", key.ID)
		}
		if len(key.Secret) != 32 {
			return nil, fmt.Errorf("secrets: key %q must be 32 bytes (AES-256), not %d", key.ID, len(key.Secret))
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("secrets: key id %q appears twice", key.ID)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// GenerateKey returns a new random key named id and its setting form
// ("id:base64key").
func GenerateKey(id string) (Key, string) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic("secrets: the system's random source failed: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return Key{ID: id, Secret: secret}, id + ":" + base64.StdEncoding.EncodeToString(secret)
}

// ParseKeys reads "id:base64key" entries separated by commas or new lines.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for i, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("secrets: key %d is not id:base64key", i+1)
		}
		secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q is not base64", id)
		}
		keys = append(keys, Key{ID: strings.TrimSpace(id), Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("secrets: no key given")
	}
	return keys, nil
}

// Load returns the keyring of env (the value of EnvVar) when it is set, and
// otherwise the one in dataDir/KeyFile, creating that file with one new key
// (mode 0600) on first use. A key file others may read is refused.
func Load(env, dataDir string) (*Keyring, error) {
	if strings.TrimSpace(env) != "" {
		keys, err := ParseKeys(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		return New(keys...)
	}
	path := filepath.Join(dataDir, KeyFile)
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("secrets: create %s: %w", dataDir, err)
		}
		_, line := GenerateKey("k1")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = fmt.Fprintf(f, "# Keys that seal secrets at rest; the first seals. Keep a copy: without it stored broker credentials are lost.\n%s\n", line)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("secrets: write %s: %w", path, err)
		}
		if info, err = os.Stat(path); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets: %s may be read by others (mode %o): run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	keys, err := ParseKeys(b.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return New(keys...)
}

// Seal encrypts plaintext bound to aad with the first key.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.seal]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: random nonce: %w", err)
	}
	out := make([]byte, 0, 2+len(k.seal)+len(nonce)+len(plaintext)+aead.Overhead())
	out = append(out, version, byte(len(k.seal)))
	out = append(out, k.seal...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// split reads a sealed value's key id and the rest.
func split(sealed []byte) (id string, rest []byte, ok bool) {
	if len(sealed) < 2 || sealed[0] != version || len(sealed) < 2+int(sealed[1]) {
		return "", nil, false
	}
	n := int(sealed[1])
	return string(sealed[2 : 2+n]), sealed[2+n:], true
}

// Open decrypts a value Seal made with aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, rest, ok := split(sealed)
	if !ok {
		return nil, fmt.Errorf("%w: not a value this server sealed", ErrOpen)
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: sealed with key %q, which %s no longer holds", ErrOpen, id, EnvVar)
	}
	if len(rest) < aead.NonceSize() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: altered, or not sealed for this place", ErrOpen)
	}
	return plain, nil
}

// Stale reports whether sealed was sealed with a key other than the one
// that seals now (re-seal it to finish a rotation).
func (k *Keyring) Stale(sealed []byte) bool {
	id, _, ok := split(sealed)
	return ok && id != k.seal
}
