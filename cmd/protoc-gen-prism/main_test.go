package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// runProtoc builds the plugin and runs protoc on one .proto source; it
// returns protoc's error output.
func runProtoc(t *testing.T, src string) (string, error) {
	t.Helper()
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not found: make proto installs Debian's protobuf-compiler")
	}
	plugin, err := buildPlugin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.proto"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(protoc, "-I", "../../proto", "-I", dir, "--plugin=protoc-gen-prism="+plugin, "--prism_out="+dir, filepath.Join(dir, "x.proto"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pluginDir holds the plugin built for the tests; TestMain removes it.
var pluginDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// buildPlugin builds the plugin once for all tests.
var buildPlugin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "protoc-gen-prism")
	if err != nil {
		return "", err
	}
	pluginDir = dir
	plugin := filepath.Join(dir, "protoc-gen-prism")
	if out, err := exec.Command("go", "build", "-o", plugin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return plugin, nil
})

const header = `syntax = "proto3";
package x.v1;
import "prism/options.proto";
option go_package = "example.com/x/v1;xv1";
`

func TestInvalidDeclarationsFailWithTheField(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	tests := []struct{ name, msg, want string }{
		{"no key", `message A { option (prism.namespace) = {namespace: "a" abstraction: KEYVALUE}; string id = 1; }`,
			"message x.v1.A: no field has (prism.field).key = true"},
		{"plaintext PII", `message A { option (prism.namespace) = {namespace: "a" abstraction: KEYVALUE}; string id = 1 [(prism.field) = {key: true}]; string email = 2 [(prism.field) = {pii: EMAIL, encrypt_at_rest: false}]; }`,
			"message x.v1.A: field email: (prism.field).encrypt_at_rest: false is not allowed"},
		{"bad namespace name", `message A { option (prism.namespace) = {namespace: "Bad_Name" abstraction: KEYVALUE}; string id = 1 [(prism.field) = {key: true}]; }`,
			"message x.v1.A: (prism.namespace).namespace"},
		{"no abstraction", `message A { option (prism.namespace) = {namespace: "a"}; string id = 1 [(prism.field) = {key: true}]; }`,
			"(prism.namespace).abstraction: is required"},
		{"unknown PII class", `message A { option (prism.namespace) = {namespace: "a" abstraction: KEYVALUE}; string id = 1 [(prism.field) = {key: true, pii: MAIL}]; }`,
			"MAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runProtoc(t, header+tt.msg+"\n")
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("protoc: %v\n%s\nwant a failure mentioning %q", err, out, tt.want)
			}
		})
	}
}
