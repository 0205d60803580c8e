package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfig_DefaultsAndValidation(t *testing.T) {
	for _, k := range []string{"SWITCHBOARD_ADDR", "DATABASE_URL", "SWITCHBOARD_DATA_DIR", "SWITCHBOARD_BASE_URL", "SWITCHBOARD_JWT_KEY", "SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_TRUST_PROXY",
		"SWITCHBOARD_RAFT_PEERS", "SWITCHBOARD_PEER_URLS", "SWITCHBOARD_RAFT_JOIN", "SWITCHBOARD_OPERATORS", "SWITCHBOARD_NODE_ID", "SWITCHBOARD_RAFT_ADDR", "SWITCHBOARD_RAFT_TIMEOUT"} {
		t.Setenv(k, "")
	}
	c, err := loadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.BaseURL != "http://127.0.0.1:8080" || !strings.HasSuffix(c.DataDir, "/.switchboard") || c.DatabaseURL != "" ||
		c.RaftTimeout != 500*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv("SWITCHBOARD_ADDR", "0.0.0.0:9000")
	t.Setenv("SWITCHBOARD_BASE_URL", "https://sb.example.com/")
	t.Setenv("SWITCHBOARD_RAFT_TIMEOUT", "2s")
	c, err = loadConfig([]string{"-log-level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.BaseURL != "https://sb.example.com" || c.LogLevel != "debug" || c.RaftTimeout != 2*time.Second {
		t.Fatalf("env and flags: %+v", c)
	}
	bad := map[string][]string{
		"SWITCHBOARD_ADDR":         {"nope"},
		"SWITCHBOARD_BASE_URL":     {"ftp://x", "not a url"},
		"SWITCHBOARD_LOG_LEVEL":    {"loud"},
		"SWITCHBOARD_TRUST_PROXY":  {"maybe"},
		"SWITCHBOARD_RAFT_PEERS":   {"n1", "n1=nohostport"},
		"SWITCHBOARD_PEER_URLS":    {"n1", "n1=ftp://x", "=http://x"},
		"SWITCHBOARD_RAFT_TIMEOUT": {"2", "soon", "10ms", "-1s", "2h"},
	}
	for k, vals := range bad {
		for _, v := range vals {
			t.Run(k+"="+v, func(t *testing.T) {
				t.Setenv(k, v)
				if _, err := loadConfig(nil); err == nil {
					t.Fatalf("%s=%q accepted", k, v)
				}
			})
		}
	}
}
