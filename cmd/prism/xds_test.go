package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startXDS runs `prism xds` in-process and waits until its admin API
// answers.
func startXDS(t *testing.T, args ...string) (admin string, stop func() error) {
	t.Helper()
	xdsAddr, adminAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runXDS(ctx, append([]string{"--xds", xdsAddr, "--admin", adminAddr, "--log-level", "warn"}, args...), io.Discard)
	}()
	admin = "http://" + adminAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(admin + "/v1/admin/nodes")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("prism xds exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("prism xds did not start within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return admin, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("prism xds did not stop within 20s of cancel")
			return nil
		}
	}
}

func adminDo(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, out
}

// TestXDSKeepsStateAcrossRestarts: what the admin API accepted is there
// after a restart, under the same state version; the seed applies only to
// an empty store.
func TestXDSKeepsStateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "prism.yaml")
	if err := os.WriteFile(seed, []byte("backends: [{name: lite, sqlite: {path: /data/kv.db}}]\nnamespaces: [{namespace: default, abstraction: keyvalue, backend: lite}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--store", filepath.Join(dir, "state", "xds.db"), "--admin-token", "tok", "--seed", seed, "--extproc", "127.0.0.1:9001"}
	admin, stop := startXDS(t, args...)
	if code, _ := adminDo(t, "GET", admin+"/v1/admin/namespaces", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET without the token = %d, want 401", code)
	}
	code, body := adminDo(t, "PUT", admin+"/v1/admin/namespaces/orders", "tok", "abstraction: keyvalue\nbackend: lite\nlimits: {rps: 10}\n")
	if code != http.StatusOK {
		t.Fatalf("PUT orders = %d %v", code, body)
	}
	version := body["status"].(map[string]any)["state_version"].(float64)
	if err := stop(); err != nil {
		t.Fatalf("prism xds: %v", err)
	}

	// The seed now names a namespace that is not in the store; a non-empty
	// store must ignore it.
	if err := os.WriteFile(seed, []byte("backends: [{name: lite, sqlite: {path: /data/kv.db}}]\nnamespaces: [{namespace: extra, abstraction: keyvalue, backend: lite}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, stop = startXDS(t, args...)
	defer stop()
	code, body = adminDo(t, "GET", admin+"/v1/admin/namespaces", "tok", "")
	if code != http.StatusOK || body["state_version"].(float64) != version {
		t.Fatalf("after restart: %d %v, want state version %v", code, body, version)
	}
	var names []string
	for _, n := range body["namespaces"].([]any) {
		names = append(names, n.(map[string]any)["namespace"].(string))
	}
	if strings.Join(names, ",") != "default,orders" {
		t.Fatalf("namespaces after restart = %v, want default,orders", names)
	}
	code, body = adminDo(t, "GET", admin+"/v1/admin/pools/default", "tok", "")
	if code != http.StatusOK {
		t.Fatalf("seeded pool: %d %v", code, body)
	}
}

func TestXDSRefusesAnOpenAdminAPI(t *testing.T) {
	t.Setenv("PRISM_ADMIN_TOKEN", "")
	err := runXDS(context.Background(), []string{"--admin", "0.0.0.0:0", "--store", filepath.Join(t.TempDir(), "x.db")}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--admin-token") {
		t.Fatalf("runXDS with a public admin address and no token = %v, want an error naming --admin-token", err)
	}
}
