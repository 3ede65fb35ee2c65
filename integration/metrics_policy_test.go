package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/internal/loadgen"
)

// TestMetricsOfPolicyAuditAndRejections scrapes after known traffic on a
// PII namespace: policy decisions, audit writes, and requests rejected at
// decoding (which never reach a backend) in prism_requests_total, where a
// made-up namespace must not become a label value.
func TestMetricsOfPolicyAuditAndRejections(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := loadgen.StartStack(context.Background(), loadgen.StackOptions{Dir: t.TempDir(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := grpc.NewClient(st.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)

	ns := loadgen.Namespace("kv", true)
	for _, c := range []struct {
		method, path, body string
		status             uint32
	}{
		{"PUT", "/v1/kv/" + ns + "/a", `{"email":"a@example.com"}`, 200}, // allow, audited
		{"GET", "/v1/kv/" + ns + "/a", "", 200},                          // allow, audited
		{"GET", "/v1/kv/no-such-ns/a", "", 404},                          // rejected at decode
		{"GET", "/v1/kv/" + ns + "/a?bogus=1", "", 400},                  // rejected at decode
		{"GET", "/v1/teleport/x", "", 404},                               // rejected at decode
	} {
		if ir := tracedCall(t, client, c.method, c.path, c.body); uint32(ir.GetStatus().GetCode()) != c.status {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, ir.GetStatus().GetCode(), ir.GetBody(), c.status)
		}
	}

	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	resp, err := http.Get(scrape.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`prism_policy_decisions_total{decision="allow"} 2`,
		`prism_policy_decisions_total{decision="deny"} 0`,
		`prism_audit_writes_total{result="ok"} 2`,
		`prism_audit_writes_total{result="error"} 0`,
		`prism_requests_total{abstraction="kv",backend="bench",code="200",namespace="` + ns + `",operation="get"} 1`,
		`prism_requests_total{abstraction="kv",backend="bench",code="400",namespace="` + ns + `",operation=""} 1`,
		`prism_requests_total{abstraction="",backend="",code="404",namespace="",operation=""} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, "no-such-ns") {
		t.Error("a namespace that is not in the config became a label value")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}
