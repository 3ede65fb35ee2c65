package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prism-gw/prism/policies"
	"github.com/prism-gw/prism/xds/admin"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

// The admin UI's end-to-end test: `prism dev` in-process, driven through the
// UI in headless Chromium (Debian's chromium; `make browser` installs it).
// It creates a namespace, writes through the dev edge and sees the rate,
// runs a migration to SHADOW_READ and sees promote refused by the gate,
// pushes a broken policy and sees the refusal, and checks keyboard access
// and contrast on every page. PRISM_SCREENSHOTS=1 writes the screenshots in
// docs/screenshots/ that README.md shows.

// findChromium returns the browser to drive: PRISM_CHROMIUM, else the
// first of the usual names on PATH.
func findChromium() string {
	if p := os.Getenv("PRISM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type browser struct {
	t     *testing.T
	ctx   context.Context
	admin string
	shots string // directory for screenshots; empty: none
}

func newBrowser(t *testing.T, admin string) *browser {
	t.Helper()
	exe := findChromium()
	if exe == "" {
		t.Skip("chromium is not installed: run `make browser` (scripts/browser.sh installs Debian's chromium) or set PRISM_CHROMIUM")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, admin: admin}
	if os.Getenv("PRISM_SCREENSHOTS") == "1" {
		b.shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return b
}

// do runs steps with a bound, failing with what the page shows.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage shows:\n%s", what, err, b.mainText())
	}
}

// wait polls a JavaScript predicate until it is true.
func (b *browser) wait(what, predicate string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage shows:\n%s", what, err, b.mainText())
	}
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (b *browser) mainText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// open shows a page of the UI and waits for its heading.
func (b *browser) open(hash string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Navigate(b.admin+"/ui/"+hash))
	b.wait("the page heading of "+hash, `document.querySelector('main h1') !== null`)
}

// confirm accepts the confirmation dialog after checking that it states
// the consequence.
func (b *browser) confirm(consequence string) {
	b.t.Helper()
	b.wait("the confirmation dialog", `document.getElementById('confirm').open`)
	if text := evalJS[string](b, `document.getElementById('confirm-text').textContent`); !strings.Contains(text, consequence) {
		b.t.Fatalf("confirmation says %q, want it to state %q", text, consequence)
	}
	if f := evalJS[string](b, `document.activeElement.id`); f != "confirm-cancel" {
		b.t.Errorf("dialog focuses %q first, want confirm-cancel so Enter cannot act by accident", f)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// contrastJS lists the visible text whose color has less than WCAG AA's
// contrast against its background: 4.5:1, or 3:1 for large text.
const contrastJS = `(() => {
  const parse = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [], seen = new Set();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, el = n.parentElement;
    if (!n.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('svg, .visually-hidden')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.bottom < 0) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || cs.display === 'none') continue;
    const fg = parse(cs.color), bg = bgOf(el);
    if (!fg) continue;
    const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize), large = size >= 24 || (size >= 18.66 && parseInt(cs.fontWeight, 10) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(el.tagName + '.' + el.className + ' "' + n.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2));
  }
  return bad;
})()`

// checkAccess checks a page for keyboard use and contrast: the first Tab
// reaches the skip link, which shows a focus ring and moves focus to the
// content; every control is a real link, button or form field with a name;
// all text meets WCAG AA contrast.
func (b *browser) checkAccess(page string) {
	b.t.Helper()
	// A fresh load starts keyboard navigation at the top of the document.
	b.do(page+": reload", chromedp.Reload())
	b.wait(page+": the heading after a reload", `document.querySelector('main h1') !== null`)
	b.do(page+": Tab", chromedp.KeyEvent("\t"))
	if got := evalJS[string](b, `document.activeElement.className + '|' + getComputedStyle(document.activeElement).outlineStyle + '|' + document.activeElement.getBoundingClientRect().top`); !strings.HasPrefix(got, "skip|solid|") || strings.HasSuffix(got, "|-") {
		b.t.Errorf("%s: the first Tab stop is %q, want the visible skip link with a focus outline", page, got)
	}
	b.do(page+": Enter on the skip link", chromedp.KeyEvent("\r"))
	if got := evalJS[string](b, `document.activeElement.id + ' ' + location.hash`); !strings.HasPrefix(got, "main ") || strings.Contains(got, "#main") {
		b.t.Errorf("%s: after the skip link, focus and hash are %q, want main and the page's own hash", page, got)
	}
	unnamed := evalJS[[]string](b, `[...document.querySelectorAll('main button, main input, main select, main textarea, main a')].filter((e) => {
		if (e.matches('a') && !e.getAttribute('href')) return true;
		if (e.matches('button, a')) return !e.textContent.trim() && !e.getAttribute('aria-label');
		return !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label');
	}).map((e) => e.outerHTML.slice(0, 80))`)
	if len(unnamed) > 0 {
		b.t.Errorf("%s: controls without a name or label: %v", page, unnamed)
	}
	if bad := evalJS[[]string](b, contrastJS); len(bad) > 0 {
		b.t.Errorf("%s: text below WCAG AA contrast: %v", page, bad)
	}
	if bad := evalJS[string](b, `(/\b(null|undefined|NaN)\b|\[object /.exec(document.querySelector('main').innerText) || [''])[0]`); bad != "" {
		b.t.Errorf("%s: the page shows %q where a value should be", page, bad)
	}
}

// adminCall sends one admin API request and decodes the answer.
func adminCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// traffic writes (and reads) through the dev edge until stopped, so that a
// rate polled every few seconds sees requests.
type traffic struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startTraffic(t *testing.T, base, ns string, readKeys []string) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/%s/new-%d", base, ns, i%50), bytes.NewReader([]byte(`{"email":"ada@example.com","n":1}`)))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if len(readKeys) > 0 {
				if resp, err := http.Get(base + "/v1/kv/" + ns + "/" + readKeys[i%len(readKeys)]); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
	t.Cleanup(tr.halt)
	return tr
}

func (tr *traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

func TestAdminUIInBrowser(t *testing.T) {
	if findChromium() == "" {
		t.Skip("chromium is not installed: run `make browser` (scripts/browser.sh installs Debian's chromium) or set PRISM_CHROMIUM")
	}
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
	if code, out := adminCall(t, "PUT", admin+"/v1/admin/backends/spare", fmt.Sprintf("sqlite: {path: %s}\n", filepath.Join(dir, "data", "spare.db"))); code != 200 {
		t.Fatalf("PUT backend spare = %d %v", code, out)
	}
	b := newBrowser(t, admin)

	// Create a namespace through the UI.
	b.open("#/namespaces")
	b.do("fill the namespace form",
		chromedp.SetValue(chromedp.CSS("#ns-name"), "orders"),
		chromedp.SetValue(chromedp.CSS("#ns-abstraction"), "keyvalue"),
		chromedp.SetValue(chromedp.CSS("#ns-backend"), "local"),
		chromedp.Click(chromedp.CSS("#create-namespace button[type=submit]")))
	b.wait("the namespace's plan", `/Namespace orders applied/.test(document.querySelector('main').innerText)`)
	// The team then declares its PII, as prism ns apply would.
	if code, out := adminCall(t, "PUT", admin+"/v1/admin/namespaces/orders",
		"abstraction: keyvalue\nbackend: local\nschema: {pii: [{path: email, class: email}]}\n"); code != 200 {
		t.Fatalf("PUT namespace orders with a PII schema = %d %v", code, out)
	}

	// Data written before the migration exists only on the old backend:
	// shadow reads of it mismatch later.
	old := make([]string, 10)
	for i := range old {
		old[i] = fmt.Sprintf("old-%d", i)
	}
	putUntilServed(t, base+"/v1/kv/orders/", old)
	tr := startTraffic(t, base, "orders", nil)

	// The rate shows on the list and on the namespace's page.
	b.open("#/namespaces")
	b.wait("a request rate for orders", `[...document.querySelectorAll('#namespaces tbody tr')].some((tr) => tr.cells[0].textContent === 'orders' && parseFloat(tr.cells[4].textContent) > 0)`)
	b.screenshot("namespaces")
	b.checkAccess("namespaces")
	b.open("#/namespaces/orders")
	b.wait("the rate on the namespace page", `parseFloat((document.getElementById('rps') || {}).textContent) > 0`)
	b.wait("the PII schema", `/email/.test(document.getElementById('pii').textContent)`)
	b.wait("audit records of the writes", `document.querySelectorAll('#audit tbody tr td').length > 1 && /email/.test(document.getElementById('audit').textContent)`)
	if text := evalJS[string](b, `document.body.innerText`); strings.Contains(text, "ada@example.com") {
		t.Errorf("the namespace page shows a PII value")
	}
	b.screenshot("namespace")
	b.checkAccess("namespace")
	tr.halt()

	t.Run("migration", func(t *testing.T) {
		b.t = t
		defer func() { b.t = t }()
		if code, _ := adminCall(t, "GET", admin+"/v1/admin/migrations", ""); code == http.StatusNotFound {
			t.Skip("the migrations admin API (GET /v1/admin/migrations) is missing")
		}
		b.open("#/migrations/orders")
		b.wait("the start form", `document.getElementById('start-migration') !== null`)
		b.do("fill the start form",
			chromedp.SetValue(chromedp.CSS("#mig-to"), "spare"),
			chromedp.SetValue(chromedp.CSS("#mig-read-percent"), "100"),
			chromedp.SetValue(chromedp.CSS("#mig-threshold"), "0.01"),
			chromedp.SetValue(chromedp.CSS("#mig-min-sample"), "5"),
			chromedp.Click(chromedp.CSS("#start-migration button[type=submit]")))
		b.confirm("shadow writes")
		b.wait("phase SHADOW_WRITE", `(document.getElementById('advance') || {}).textContent === 'Advance to backfill'`)
		b.do("advance", chromedp.Click(chromedp.CSS("#advance")))
		b.confirm("backfill starts")
		b.wait("phase BACKFILL", `(document.getElementById('advance') || {}).textContent === 'Advance to shadow read'`)

		// The backfill job reports its progress through the admin API;
		// here it claims to be done without having copied the old keys,
		// which is what the shadow reads must catch.
		st := migrationStatus(t, admin, "orders")
		id := st["migration"].(map[string]any)["id"].(string)
		if code, out := adminCall(t, "PUT", admin+"/v1/admin/namespaces/orders/migration/backfill",
			fmt.Sprintf(`{"migration_id": %q, "keys_done": 10, "keys_total": 10, "copied": 0, "done": true}`, id)); code != 200 {
			t.Fatalf("backfill report = %d %v", code, out)
		}
		b.do("advance", chromedp.Click(chromedp.CSS("#advance")))
		b.confirm("reads are also read from spare")
		b.wait("phase SHADOW_READ", `(document.querySelector('ol.phases li[aria-current=step]') || {}).textContent === 'shadow read'`)

		reads := startTraffic(t, base, "orders", old)
		b.wait("the gate refusing on mismatches", `/mismatch rate [0-9.]+ .* is not below the threshold/.test((document.getElementById('gate-reason') || {}).textContent)`)
		reads.halt()
		if !evalJS[bool](b, `document.getElementById('promote').disabled`) {
			t.Errorf("promote is enabled while the gate refuses it")
		}
		b.wait("the mismatch chart", `document.querySelectorAll('#mismatch-chart polyline').length === 1`)
		code, out := adminCall(t, "POST", admin+"/v1/admin/namespaces/orders/migration", `{"action": "promote"}`)
		if e, _ := out["error"].(map[string]any); code != http.StatusConflict || e["code"] != "FAILED_PRECONDITION" {
			t.Errorf("promote through the API = %d %v, want 409 FAILED_PRECONDITION", code, out)
		}
		b.screenshot("migration")
		b.checkAccess("migration")

		b.open("#/migrations")
		b.wait("orders in the list of migrations", `[...document.querySelectorAll('#migrations tbody tr')].some((tr) => tr.cells[0].textContent === 'orders' && /SHADOW_READ/.test(tr.cells[3].textContent) && /mismatch rate/.test(tr.cells[5].textContent))`)
		b.checkAccess("migrations")

		b.open("#/migrations/orders")
		b.wait("the abort button", `document.getElementById('abort') !== null && !document.getElementById('abort').disabled`)
		b.do("abort", chromedp.Click(chromedp.CSS("#abort")))
		b.confirm("local stays the only backend of orders")
		b.wait("phase ABORTED", `(document.querySelector('ol.phases li[aria-current=step]') || {}).textContent === 'aborted' && document.getElementById('abort').disabled`)
	})

	t.Run("policies", func(t *testing.T) {
		b.t = t
		defer func() { b.t = t }()
		if code, _ := adminCall(t, "GET", admin+"/v1/admin/policies", ""); code == http.StatusNotFound {
			t.Skip("the policies admin API (GET /v1/admin/policies) is missing")
		}
		b.open("#/policies")
		b.wait("the policy editor", `document.getElementById('push-policy') !== null`)
		b.do("write a broken policy",
			chromedp.SetValue(chromedp.CSS("#policy-name"), "broken"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#push-policy textarea').value = 'package prism.authz\n\nimport rego.v1\n\ndecision := {"allow": true} if {\n  input.subject ==\n}\n'`),
			chromedp.Click(chromedp.CSS("#push")))
		b.wait("the refusal", `document.getElementById('push-error') !== null`)
		if msg := evalJS[string](b, `document.getElementById('push-error').textContent`); !strings.Contains(msg, "broken") || !strings.Contains(msg, "rego") {
			t.Errorf("refusal shows %q, want the policy name and the compiler's message", msg)
		}
		if code, _ := adminCall(t, "GET", admin+"/v1/admin/policies/broken", ""); code != http.StatusNotFound {
			t.Errorf("the broken policy was stored (GET = %d)", code)
		}
		// Evaluate the default policy for an anonymous reader of an open namespace.
		b.do("evaluate",
			chromedp.SetValue(chromedp.CSS("#eval-ns"), "orders"),
			chromedp.SetValue(chromedp.CSS("#eval-op"), "get"),
			chromedp.Click(chromedp.CSS("#evaluate button[type=submit]")))
		b.wait("the decision", `/allow/.test((document.getElementById('eval-result') || {}).textContent)`)

		// A policy that passes the control plane's checks but that extproc
		// cannot use for namespace orders (a conflict only its inputs
		// reach): the node NACKs it, keeps the old policy, and the page
		// shows the NACK with extproc's error.
		modules := policies.Default()
		modules["closed.rego"] = "package prism.authz\n\ndecision := {\"allow\": false, \"role\": \"none\", \"reason\": \"closed\"} if input.namespace == \"orders\"\n"
		body, _ := json.Marshal(map[string]any{"modules": modules})
		if code, out := adminCall(t, "PUT", admin+"/v1/admin/policies/default", string(body)); code != http.StatusOK {
			t.Fatalf("PUT a policy that only extproc refuses = %d %v", code, out)
		}
		waitPolicyNack(t, admin)
		b.open("#/nodes") // leave and come back: the page reads the fleet when it opens
		b.open("#/policies")
		b.wait("the NACK", `/rejecting/.test((document.getElementById('policy-nacks') || {}).textContent) && /conflict/.test(document.getElementById('policy-nacks').textContent)`)
		b.screenshot("policies")
		body, _ = json.Marshal(map[string]any{"modules": policies.Default()})
		if code, out := adminCall(t, "PUT", admin+"/v1/admin/policies/default", string(body)); code != http.StatusOK {
			t.Fatalf("PUT the built-in policy back = %d %v", code, out)
		}
		b.checkAccess("policies")
	})

	t.Run("nodes", func(t *testing.T) {
		b.t = t
		defer func() { b.t = t }()
		b.open("#/nodes")
		b.wait("a connected extproc node", `/connected/.test(document.querySelector('main').innerText) && /prism\.config\.v1\.Namespace/.test(document.querySelector('main').innerText)`)
		b.screenshot("nodes")
		b.checkAccess("nodes")
	})
}

// waitPolicyNack waits until an extproc node rejects the Policy version it
// was last sent.
func waitPolicyNack(t *testing.T, admin string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, out := adminCall(t, "GET", admin+"/v1/admin/nodes", "")
		nodes, _ := out["nodes"].([]any)
		for _, n := range nodes {
			types, _ := n.(map[string]any)["types"].([]any)
			for _, ty := range types {
				ty := ty.(map[string]any)
				nack, _ := ty["last_nack"].(map[string]any)
				if strings.HasSuffix(ty["type_url"].(string), ".Policy") && nack != nil && nack["version"] == ty["sent_version"] {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no extproc node NACKed the policy within 15s: %v", out)
		}
	}
}

// putUntilServed writes the keys once the namespace is served (the admin
// change reaches extproc over ADS).
func putUntilServed(t *testing.T, prefix string, keys []string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest("PUT", prefix+keys[0], strings.NewReader(`{"email":"ada@example.com","v":"old"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served within 15s of its creation", prefix)
		}
	}
	for _, k := range keys[1:] {
		req, _ := http.NewRequest("PUT", prefix+k, strings.NewReader(`{"email":"ada@example.com","v":"old"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %v %v", prefix+k, resp, err)
		}
		resp.Body.Close()
	}
}

func migrationStatus(t *testing.T, admin, ns string) map[string]any {
	t.Helper()
	code, out := adminCall(t, "GET", admin+"/v1/admin/namespaces/"+ns+"/migration", "")
	if code != 200 {
		t.Fatalf("GET migration of %s = %d %v", ns, code, out)
	}
	return out
}

// TestAdminUISignIn: with an admin token the UI asks for it, refuses a
// wrong one with the API's message, and works with the right one.
func TestAdminUISignIn(t *testing.T) {
	if findChromium() == "" {
		t.Skip("chromium is not installed: run `make browser` (scripts/browser.sh installs Debian's chromium) or set PRISM_CHROMIUM")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "xds.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := server.New(ctx, server.Options{Logger: log})
	ctl := server.NewController(st, srv, server.ControllerOptions{Logger: log})
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(admin.New(ctl, srv, admin.Options{Token: "ui-test-token", Logger: log}))
	defer h.Close()

	b := newBrowser(t, h.URL)
	b.open("#/namespaces")
	b.wait("the sign-in box", `document.getElementById('login') !== null && document.activeElement.id === 'token'`)
	// The box focuses its one field, so the skip link check does not apply.
	if bad := evalJS[[]string](b, contrastJS); len(bad) > 0 {
		t.Errorf("sign in: text below WCAG AA contrast: %v", bad)
	}
	b.do("sign in with a wrong token",
		chromedp.SetValue(chromedp.CSS("#token"), "wrong"),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")))
	b.wait("the refusal", `/UNAUTHENTICATED/.test(document.querySelector('main').innerText) && document.getElementById('login') !== null`)
	b.do("sign in with the token",
		chromedp.SetValue(chromedp.CSS("#token"), "ui-test-token"),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")))
	b.wait("the namespaces page", `(document.querySelector('main h1') || {}).textContent === 'Namespaces' && document.getElementById('namespaces') !== null`)
	if got := evalJS[string](b, `sessionStorage.getItem('prism-admin-token') + '|' + localStorage.length + '|' + document.cookie`); got != "ui-test-token|0|" {
		t.Errorf("token storage = %q, want it in sessionStorage only", got)
	}
	b.do("sign out", chromedp.Click(chromedp.CSS("#session button")))
	b.wait("the sign-in box again", `document.getElementById('login') !== null && sessionStorage.getItem('prism-admin-token') === null`)
}
