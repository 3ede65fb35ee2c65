package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file run the real binary: `prism dev` as the stack and
// `prism migrate ...` as an operator would, so that a crash is a real
// SIGKILL of a process.

var (
	prismOnce sync.Once
	prismBin  string
	prismErr  error
)

// prismBinary builds cmd/prism once per test run.
func prismBinary(t *testing.T) string {
	t.Helper()
	prismOnce.Do(func() {
		dir, err := os.MkdirTemp("", "prism-bin-")
		if err != nil {
			prismErr = err
			return
		}
		prismBin = filepath.Join(dir, "prism")
		out, err := exec.Command("go", "build", "-o", prismBin, "../cmd/prism").CombinedOutput()
		if err != nil {
			prismErr = fmt.Errorf("go build ./cmd/prism: %v\n%s", err, out)
		}
	})
	if prismErr != nil {
		t.Fatal(prismErr)
	}
	return prismBin
}

// freeAddr is a loopback address no one listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// devProcess is a running `prism dev`.
type devProcess struct {
	dir, edge, admin string
	cmd              *exec.Cmd
	log              *bytes.Buffer
}

// startPrismDev runs `prism dev` in a fresh directory (its SQLite files and
// desired state under dir/.prism) and waits until the dev edge answers. A
// port freeAddr found free can be taken before prism binds it (tests run in
// parallel, and outgoing connections take ports too): a start that fails on
// it is retried on other ports.
func startPrismDev(t *testing.T) *devProcess {
	t.Helper()
	bin := prismBinary(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p, exited := launchPrismDev(t, bin, dir)
		err := p.waitReady(exited)
		if err == nil {
			return p
		}
		if attempt < 3 && strings.Contains(p.log.String(), "address already in use") {
			t.Logf("prism dev could not bind its ports (attempt %d), retrying: %v", attempt, err)
			continue
		}
		t.Fatalf("%v\n%s", err, p.log)
	}
}

// launchPrismDev starts `prism dev` on fresh ports; exited is closed when
// the process ends. The test's cleanup stops it.
func launchPrismDev(t *testing.T, bin, dir string) (*devProcess, chan struct{}) {
	t.Helper()
	p := &devProcess{dir: dir, edge: freeAddr(t), admin: freeAddr(t), log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "dev", "--http", p.edge, "--grpc", freeAddr(t), "--admin", p.admin, "--xds", freeAddr(t), "--log-level", "warn")
	p.cmd.Dir = p.dir
	p.cmd.Stderr = &lockedWriter{w: p.log}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prism dev log:\n%s", p.log)
		}
	})
	return p, exited
}

// waitReady waits until the dev edge answers, the process exits, or 30 s.
func (p *devProcess) waitReady(exited chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.edge + "/v1/kv/default/ready-probe")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("prism dev exited before it answered on %s", p.edge)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prism dev did not answer on %s within 30s (last: %v)", p.edge, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedWriter lets a process and the test's cleanup share a buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// adminJSON calls the admin API and decodes its answer into out (if not nil).
func (p *devProcess) adminJSON(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+p.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 && out == nil {
		t.Logf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// prism runs a CLI command against this stack's admin API and returns its
// combined output.
func (p *devProcess) prism(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, prismBin, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "PRISM_ADMIN=http://"+p.admin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
