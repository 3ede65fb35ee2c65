package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"sigs.k8s.io/yaml"

	"github.com/prism-gw/prism/proto/prism"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/planner"
)

const nsUsage = `usage: prism ns apply|plan|diff -f FILE [--admin URL] [--admin-token TOKEN]

  FILE is YAML (one namespace, or a file with "namespaces:" and optionally
  "backends:", as protoc-gen-prism emits) or a compiled descriptor set
  (.pb, .binpb: protoc --include_imports --descriptor_set_out) whose messages
  carry (prism.namespace) options.

  plan   show what applying FILE would create or change (tables, indexes,
         streams, topics and partitions, routes, policies); changes nothing
  apply  show the plan, then apply it (idempotent: applying twice changes nothing)
  diff   show drift between FILE and what is applied and provisioned; exits
         non-zero when there is any
`

// runNS runs the namespace commands, a client of the control plane's admin
// API: the control plane validates, plans and provisions (package
// provision), so the CLI needs no backend credentials.
func runNS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains([]string{"apply", "plan", "diff"}, args[0]) {
		fmt.Fprint(stderr, nsUsage)
		return flag.ErrHelp
	}
	verb := args[0]
	fs := flag.NewFlagSet("prism ns "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "namespace file: YAML or a descriptor set (.pb, .binpb)")
	adminURL := fs.String("admin", envOr("PRISM_ADMIN", "http://127.0.0.1:8081"), "admin API base URL (env PRISM_ADMIN)")
	token := fs.String("admin-token", os.Getenv("PRISM_ADMIN_TOKEN"), "admin bearer token (env PRISM_ADMIN_TOKEN)")
	force := fs.Bool("force", false, "apply: allow pointing an existing namespace at another backend without moving its data")
	repartition := fs.Bool("repartition", false, "apply: grow a Kafka topic that holds events (series may lose sight of earlier events; see the plan)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprint(stderr, nsUsage)
		return fmt.Errorf("ns %s: -f FILE is required", verb)
	}
	backends, namespaces, err := loadNamespaceFile(*file)
	if err != nil {
		return err
	}
	c := &nsAdmin{adminClient: adminClient{base: strings.TrimSuffix(*adminURL, "/"), token: *token}, force: *force, repartition: *repartition}
	switch verb {
	case "plan":
		_, err := c.planAll(ctx, backends, namespaces, stdout)
		return err
	case "diff":
		return c.diff(ctx, namespaces, stdout)
	}
	start := time.Now()
	// Backends first: the namespaces are planned against them. A backend
	// alone provisions nothing.
	if len(backends) > 0 {
		if err := c.planBackends(ctx, backends, stdout); err != nil {
			return fmt.Errorf("%w (nothing applied)", err)
		}
		for _, b := range backends {
			if _, err := c.put(ctx, "backends", b.GetName(), b, false); err != nil {
				return err
			}
		}
	}
	if _, err := c.planAll(ctx, nil, namespaces, stdout); err != nil {
		return fmt.Errorf("%w (no namespace applied)", err)
	}
	fmt.Fprintln(stdout, "applying:")
	for _, n := range namespaces {
		r, err := c.put(ctx, "namespaces", n.GetNamespace(), n, false)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, indent(r.Plan))
	}
	fmt.Fprintf(stdout, "applied %d namespace(s) in %s\n", len(namespaces), time.Since(start).Round(time.Millisecond))
	return nil
}

// nsAdmin is the CLI's client of the admin API.
type nsAdmin struct {
	adminClient
	force, repartition bool
}

// nsPutResult is the part of a PUT or dry-run answer the CLI shows.
type nsPutResult struct {
	Plan    string         `json:"plan"`
	Storage []planner.Step `json:"storage"`
}

func (c *nsAdmin) put(ctx context.Context, kind, name string, m proto.Message, dryRun bool) (nsPutResult, error) {
	var r nsPutResult
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return r, err
	}
	path := "/v1/admin/" + kind + "/" + name
	var q []string
	if dryRun {
		q = append(q, "dry_run=true")
	}
	if c.force {
		q = append(q, "force=true")
	}
	if c.repartition {
		q = append(q, "repartition=true")
	}
	if len(q) > 0 {
		path += "?" + strings.Join(q, "&")
	}
	if err := c.do(ctx, http.MethodPut, path, body, &r); err != nil {
		return r, fmt.Errorf("%s %s refused: %w", strings.TrimSuffix(kind, "s"), name, err)
	}
	return r, nil
}

// planAll shows the plan of the backends and of every namespace, and fails
// if any is refused. Namespaces are planned against the backends the
// control plane has: `plan` of a file that declares a new backend refuses
// its namespaces as using an unknown backend, `apply` applies the backends
// first.
func (c *nsAdmin) planAll(ctx context.Context, backends []*configv1.Backend, namespaces []*configv1.Namespace, w io.Writer) ([]nsPutResult, error) {
	if err := c.planBackends(ctx, backends, w); err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "plan:")
	var out []nsPutResult
	var errs []error
	for _, n := range namespaces {
		r, err := c.put(ctx, "namespaces", n.GetNamespace(), n, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprint(w, indent(r.Plan))
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// planBackends shows the plan of the file's backends.
func (c *nsAdmin) planBackends(ctx context.Context, backends []*configv1.Backend, w io.Writer) error {
	if len(backends) == 0 {
		return nil
	}
	fmt.Fprintln(w, "plan of the backends (applied before the namespaces are planned):")
	var errs []error
	for _, b := range backends {
		r, err := c.put(ctx, "backends", b.GetName(), b, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprint(w, indent(r.Plan))
	}
	return errors.Join(errs...)
}

// diff shows what differs between the file and what is applied: config
// fields, and storage the backend lacks or has otherwise.
func (c *nsAdmin) diff(ctx context.Context, namespaces []*configv1.Namespace, w io.Writer) error {
	drift := 0
	for _, n := range namespaces {
		r, err := c.put(ctx, "namespaces", n.GetNamespace(), n, true)
		if err != nil {
			return err
		}
		var lines []string
		for _, l := range strings.Split(r.Plan, "\n") {
			if strings.HasSuffix(l, ": create") || strings.HasPrefix(strings.TrimSpace(l), "change ") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		var notes []string
		for _, s := range r.Storage {
			switch {
			case s.Changes():
				lines = append(lines, "storage: "+s.String())
			case s.Action == "keep":
				// Deliberately left as it is: shown, not drift.
				notes = append(notes, "note: "+s.String())
			}
		}
		if len(lines) == 0 {
			fmt.Fprintf(w, "namespace %s: in sync\n", n.GetNamespace())
		} else {
			drift++
			fmt.Fprintf(w, "namespace %s: drift\n", n.GetNamespace())
		}
		for _, l := range append(lines, notes...) {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if drift > 0 {
		return fmt.Errorf("ns diff: %d of %d namespace(s) differ from the file", drift, len(namespaces))
	}
	return nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// loadNamespaceFile reads the backends and namespaces of a YAML file or a
// descriptor set.
func loadNamespaceFile(path string) ([]*configv1.Backend, []*configv1.Namespace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasSuffix(path, ".pb") || strings.HasSuffix(path, ".binpb") {
		ns, err := namespacesFromDescriptorSet(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, ns, nil
	}
	b, ns, err := namespacesFromYAML(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, ns, nil
}

func namespacesFromDescriptorSet(data []byte) ([]*configv1.Namespace, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a descriptor set: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("descriptor set (compile it with --include_imports): %w", err)
	}
	decls, err := prism.Declarations(files)
	if err != nil {
		return nil, err
	}
	if len(decls) == 0 {
		return nil, errors.New("no message has a (prism.namespace) option")
	}
	var out []*configv1.Namespace
	for _, d := range decls {
		out = append(out, d.Namespace)
	}
	return out, nil
}

func namespacesFromYAML(data []byte) ([]*configv1.Backend, []*configv1.Namespace, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, nil, errors.New("want a YAML mapping: a namespace, or namespaces: [...]")
	}
	if _, many := m["namespaces"]; !many {
		var ns configv1.Namespace
		if err := config.ParseMessage(data, &ns); err != nil {
			return nil, nil, err
		}
		return nil, []*configv1.Namespace{&ns}, nil
	}
	var cfg configv1.DevConfig
	if err := config.ParseMessage(data, &cfg); err != nil {
		return nil, nil, err
	}
	for i, n := range cfg.GetNamespaces() {
		if err := configv1.ValidateName(n.GetNamespace()); err != nil {
			return nil, nil, fmt.Errorf("namespaces[%d].namespace: %w", i, err)
		}
	}
	if len(cfg.GetNamespaces()) == 0 {
		return nil, nil, errors.New("namespaces: none declared")
	}
	return cfg.GetBackends(), cfg.GetNamespaces(), nil
}
