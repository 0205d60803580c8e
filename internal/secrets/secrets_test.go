package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/internal/secrets"
)

func ring(t *testing.T, keys ...secrets.Key) *secrets.Keyring {
	t.Helper()
	k, err := secrets.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen_BoundToItsPlace(t *testing.T) {
	key, _ := secrets.GenerateKey("k1")
	k := ring(t, key)
	sealed, err := k.Seal([]byte("guest:guest"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "guest") {
		t.Fatal("the plaintext shows in the sealed value")
	}
	plain, err := k.Open(sealed, []byte("row-1"))
	if err != nil || string(plain) != "guest:guest" {
		t.Fatalf("open: %q, %v", plain, err)
	}
	if _, err := k.Open(sealed, []byte("row-2")); !errors.Is(err, secrets.ErrOpen) {
		t.Fatalf("opened in another row: %v", err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Open(tampered, []byte("row-1")); !errors.Is(err, secrets.ErrOpen) {
		t.Fatalf("opened a tampered value: %v", err)
	}
	other, _ := secrets.GenerateKey("k1")
	if _, err := ring(t, other).Open(sealed, []byte("row-1")); !errors.Is(err, secrets.ErrOpen) {
		t.Fatalf("opened with another key of the same name: %v", err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := secrets.GenerateKey("old")
	k := ring(t, old)
	sealed, _ := k.Seal([]byte("pw"), nil)
	fresh, _ := secrets.GenerateKey("new")
	rotated := ring(t, fresh, old)
	if !rotated.Stale(sealed) {
		t.Fatal("a value sealed with the old key is not stale")
	}
	plain, err := rotated.Open(sealed, nil)
	if err != nil || string(plain) != "pw" {
		t.Fatalf("the old key does not open: %v", err)
	}
	resealed, _ := rotated.Seal(plain, nil)
	if rotated.Stale(resealed) {
		t.Fatal("re-sealed value is stale")
	}
	if _, err := ring(t, fresh).Open(sealed, nil); err == nil || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("without the old key: %v (want its name)", err)
	}
}

func TestLoad_FromTheSettingAndTheDataDir(t *testing.T) {
	_, line := secrets.GenerateKey("a")
	_, line2 := secrets.GenerateKey("b")
	k, err := secrets.Load(line+","+line2, "")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := k.Seal([]byte("x"), nil)
	if k.Stale(sealed) {
		t.Fatal("the first key does not seal")
	}
	for _, bad := range []string{"nocolon", "a:!!!", "a:" + strings.Repeat("A", 8), "UPPER:" + strings.SplitN(line, ":", 2)[1], line + "," + line} {
		if _, err := secrets.Load(bad, ""); err == nil {
			t.Errorf("%q was taken", bad)
		} else if strings.Contains(err.Error(), strings.SplitN(line, ":", 2)[1]) {
			t.Errorf("the error shows the key: %v", err)
		}
	}

	dir := filepath.Join(t.TempDir(), "data")
	k1, err := secrets.Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, secrets.KeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	sealed, _ = k1.Seal([]byte("kept"), nil)
	k2, err := secrets.Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := k2.Open(sealed, nil); err != nil || string(plain) != "kept" {
		t.Fatalf("a second load has another key: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, secrets.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Load("", dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others may read: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	key, _ := secrets.GenerateKey("k1")
	k, _ := secrets.New(key)
	sealed, _ := k.Seal([]byte("x"), nil)
	f.Add(sealed)
	f.Add([]byte{1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = k.Open(b, nil)
		_ = k.Stale(b)
	})
}
