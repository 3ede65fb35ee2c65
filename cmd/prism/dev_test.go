package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDev runs `prism dev` in-process and waits until it answers.
func startDev(t *testing.T, cfgPath string) (base string, stop func() error) {
	t.Helper()
	base, _, stop = startDevAdmin(t, cfgPath)
	return base, stop
}

// startDevAdmin is startDev that also returns the admin API's base URL. The
// control plane's store sits next to cfgPath, so that a restart with the
// same cfgPath finds the same desired state.
func startDevAdmin(t *testing.T, cfgPath string) (base, admin string, stop func() error) {
	t.Helper()
	httpAddr, grpcAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	store := filepath.Join(filepath.Dir(cfgPath), "xds.db")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, []string{"--config", cfgPath, "--http", httpAddr, "--grpc", grpcAddr,
			"--admin", adminAddr, "--xds", "127.0.0.1:0", "--store", store, "--log-level", "warn",
			"--kek-file", filepath.Join(filepath.Dir(cfgPath), "kek"), "--keys-file", filepath.Join(filepath.Dir(cfgPath), "keys.json"),
			"--audit-log", filepath.Join(filepath.Dir(cfgPath), "audit.log")}, io.Discard)
	}()
	base, admin = "http://"+httpAddr, "http://"+adminAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/v1/kv/default/__probe")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("prism dev exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("prism dev did not start within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return base, admin, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("prism dev did not stop within 20s of cancel")
			return nil
		}
	}
}

// TestDevRoundTripAndCleanRestart is the README's first promise: PUT then
// GET through `prism dev`, and the data is there after a clean restart.
func TestDevRoundTripAndCleanRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prism.yaml")
	data := bytes.ReplaceAll(defaultConfig, []byte(".prism/prism.db"), []byte(filepath.Join(dir, "data", "kv.db")))
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	base, stop := startDev(t, cfg)
	req, _ := http.NewRequest("PUT", base+"/v1/kv/default/a", bytes.NewReader([]byte("hi")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatalf("prism dev stopped with %v", err)
	}

	base, stop = startDev(t, cfg)
	defer stop()
	resp, err = http.Get(base + "/v1/kv/default/a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hi" {
		t.Fatalf("GET after restart = %d %q, want 200 hi", resp.StatusCode, body)
	}
}

// TestDevServesAnAdminChange: a namespace PUT through `prism dev`'s admin
// API reaches its extproc over ADS and is served by the dev edge. The
// latency is printed, not asserted: a loaded CI machine says little.
func TestDevServesAnAdminChange(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prism.yaml")
	data := bytes.ReplaceAll(defaultConfig, []byte(".prism/prism.db"), []byte(filepath.Join(dir, "data", "kv.db")))
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	base, admin, stop := startDevAdmin(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("prism dev stopped with %v", err)
		}
	}()
	put := func() int {
		req, _ := http.NewRequest("PUT", base+"/v1/kv/fresh/probe", bytes.NewReader([]byte("x")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(); code != http.StatusNotFound {
		t.Fatalf("PUT to namespace fresh before it exists = %d, want 404", code)
	}

	start := time.Now()
	if code, out := adminDo(t, "PUT", admin+"/v1/admin/namespaces/fresh", "", "abstraction: keyvalue\nbackend: local\n"); code != http.StatusOK {
		t.Fatalf("admin PUT namespaces/fresh = %d %v", code, out)
	}
	accepted := time.Since(start)
	for deadline := start.Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		code := put()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace fresh not served within 10s of the admin PUT: last answer %d", code)
		}
	}
	t.Logf("admin change served after %v (admin PUT answered after %v)", time.Since(start).Round(time.Microsecond), accepted.Round(time.Microsecond))
}

func TestDefaultConfigParses(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.GetNamespaces()) == 0 || cfg.GetNamespaces()[0].GetNamespace() != "default" {
		t.Fatalf("default config has no namespace \"default\": %v", cfg)
	}
}

// TestDevTourNamespaces checks that the namespaces the README's tour uses
// exist in the embedded config with the right abstractions.
func TestDevTourNamespaces(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"default": "KEYVALUE", "events": "TIMESERIES", "social": "GRAPH"}
	for _, n := range cfg.GetNamespaces() {
		if want[n.GetNamespace()] == n.GetAbstraction().String() {
			delete(want, n.GetNamespace())
		}
	}
	if len(want) > 0 {
		t.Fatalf("embedded prism.yaml lacks %v", want)
	}
}
