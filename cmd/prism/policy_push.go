package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prism-gw/prism/policies"
	"github.com/prism-gw/prism/xds/resource"
	"github.com/prism-gw/prism/xds/server"
)

// pushOptions are the flags of `prism policy push`.
type pushOptions struct {
	name   string
	admin  string
	token  string
	wait   time.Duration
	poll   time.Duration
	client *http.Client
}

// runPolicyPush runs `prism policy push DIR`: it PUTs the .rego files of DIR
// (the built-in policy for "-") as a policy, which the control plane compiles
// and tests before it accepts, then follows GET /v1/admin/nodes until every
// connected extproc node has ACKed or NACKed the new version, and prints the
// time from the push to enforcement.
func runPolicyPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism policy push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := pushOptions{client: &http.Client{Timeout: 30 * time.Second}, poll: 20 * time.Millisecond}
	fs.StringVar(&o.name, "name", "default", `policy name; namespaces name it in their "policy" field ("default": those naming none)`)
	fs.StringVar(&o.admin, "admin", envOr("PRISM_ADMIN", "http://127.0.0.1:8081"), "admin API base URL (env PRISM_ADMIN; default prism dev's, prism xds: its --admin)")
	fs.StringVar(&o.token, "admin-token", os.Getenv("PRISM_ADMIN_TOKEN"), "admin bearer token (env PRISM_ADMIN_TOKEN)")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for extproc nodes to ACK; 0: do not wait")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: prism policy push DIR [flags]   (DIR \"-\": the built-in policy)")
		fs.PrintDefaults()
	}
	// DIR may come before or after the flags.
	var dir string
	if len(args) > 0 && (args[0] == "-" || !strings.HasPrefix(args[0], "-")) {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	if !strings.Contains(o.admin, "://") {
		o.admin = "http://" + o.admin
	}
	o.admin = strings.TrimSuffix(o.admin, "/")

	modules := policies.Default()
	if dir != "-" {
		var err error
		if modules, err = policies.LoadDir(dir); err != nil {
			return err
		}
		if len(modules) == 0 {
			return fmt.Errorf("policy push: no .rego files in %s", dir)
		}
		for file := range modules {
			if strings.Contains(file, "/") {
				return fmt.Errorf("policy push: %s is in a subdirectory of %s; a policy is the .rego files directly in one directory", file, dir)
			}
		}
	}
	return pushPolicy(ctx, o, modules, stdout)
}

// pushPolicy PUTs the modules and waits for the extproc nodes.
func pushPolicy(ctx context.Context, o pushOptions, modules map[string]string, stdout io.Writer) error {
	before, err := o.nodes(ctx)
	if err != nil {
		return err
	}
	sent := map[string]string{}
	for _, n := range before {
		sent[n.ID] = policyType(n).SentVersion
	}

	body, err := json.Marshal(map[string]any{"modules": modules})
	if err != nil {
		return err
	}
	start := time.Now()
	var put struct {
		Policy struct {
			Version string `json:"version"`
		} `json:"policy"`
		Plan   string                        `json:"plan"`
		Tests  struct{ Passed, Skipped int } `json:"tests"`
		Status struct {
			Changed bool `json:"changed"`
		} `json:"status"`
	}
	if err := o.do(ctx, http.MethodPut, "/v1/admin/policies/"+o.name, body, &put); err != nil {
		return fmt.Errorf("policy push %s: %w", o.name, err)
	}
	accepted := time.Since(start)
	fmt.Fprintf(stdout, "policy %s: version %s accepted in %s (%d Rego tests passed, %d skipped)\n",
		o.name, put.Policy.Version, accepted.Round(time.Millisecond), put.Tests.Passed, put.Tests.Skipped)
	if !put.Status.Changed {
		fmt.Fprintf(stdout, "policy %s was already at this version; nothing to push\n", o.name)
		return nil
	}
	fmt.Fprint(stdout, put.Plan)
	if o.wait <= 0 {
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	for {
		nodes, err := o.nodes(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("policy push: extproc nodes did not all answer within %s", o.wait)
			}
			return err
		}
		pending, nacks := 0, 0
		for _, n := range nodes {
			ts := policyType(n)
			switch {
			case ts.SentVersion == "" || ts.SentVersion == sent[n.ID]:
				pending++ // the new version has not reached it yet
			case ts.LastNack != nil && ts.LastNack.Version == ts.SentVersion:
				nacks++
			case ts.AckedVersion != ts.SentVersion:
				pending++
			}
		}
		if pending == 0 {
			took := time.Since(start)
			for _, n := range nodes {
				ts := policyType(n)
				if ts.LastNack != nil && ts.LastNack.Version == ts.SentVersion {
					fmt.Fprintf(stdout, "  node %s: NACK of %s, keeps the policy in force: %s\n", n.ID, ts.SentVersion, ts.LastNack.Error)
				} else {
					fmt.Fprintf(stdout, "  node %s: ACK of %s\n", n.ID, ts.AckedVersion)
				}
			}
			switch {
			case len(nodes) == 0:
				fmt.Fprintln(stdout, "no extproc node is connected; nodes get the policy when they connect")
				return nil
			case nacks > 0:
				return fmt.Errorf("policy push: %d of %d extproc nodes rejected policy %s version %s (see above); they keep the policy in force", nacks, len(nodes), o.name, put.Policy.Version)
			}
			fmt.Fprintf(stdout, "enforced on %d extproc node(s) %s after the push\n", len(nodes), took.Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("policy push: %d of %d extproc nodes had not ACKed policy %s version %s within %s", pending, len(nodes), o.name, put.Policy.Version, o.wait)
		case <-time.After(o.poll):
		}
	}
}

// policyType is a node's status of the Policy type (zero when it has none).
func policyType(n server.NodeStatus) server.TypeStatus {
	for _, ts := range n.Types {
		if ts.TypeURL == resource.PolicyType {
			return ts
		}
	}
	return server.TypeStatus{}
}

// nodes returns the connected extproc nodes, sorted by id.
func (o pushOptions) nodes(ctx context.Context) ([]server.NodeStatus, error) {
	var out struct {
		Nodes []server.NodeStatus `json:"nodes"`
	}
	if err := o.do(ctx, http.MethodGet, "/v1/admin/nodes", nil, &out); err != nil {
		return nil, fmt.Errorf("policy push: listing nodes: %w", err)
	}
	var nodes []server.NodeStatus
	for _, n := range out.Nodes {
		if n.Connected && n.Class == resource.ClassExtproc {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b server.NodeStatus) int { return strings.Compare(a.ID, b.ID) })
	return nodes, nil
}

// do sends one admin API request and decodes a 200 answer into out.
func (o pushOptions) do(ctx context.Context, method, path string, body []byte, out any) error {
	c := &adminClient{base: o.admin, token: o.token, http: o.client}
	if body == nil {
		return c.do(ctx, method, path, nil, out)
	}
	return c.do(ctx, method, path, body, out)
}
