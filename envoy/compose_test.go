package envoy_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/resource"
)

// compose is the part of compose.yaml the checks read.
type compose struct {
	Services map[string]struct {
		Image      string            `json:"image"`
		Command    []string          `json:"command"`
		Volumes    []string          `json:"volumes"`
		Ports      []string          `json:"ports"`
		WorkingDir string            `json:"working_dir"`
		Env        map[string]string `json:"environment"`
	} `json:"services"`
	Volumes map[string]any `json:"volumes"`
}

// gencertsDir is where `go run ./cmd/prism certs` writes by default;
// compose mounts it, and it is not committed.
const gencertsDir = "envoy/certs/dev"

func loadCompose(t *testing.T) *compose {
	t.Helper()
	data, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &c
}

// flagValue finds --name=value or --name value in a command.
func flagValue(cmd []string, name string) string {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return h, n
}

// TestComposeAgreesWithTheBootstrap checks what a Docker run would find out
// the hard way: files that are not there, and names and ports that do not
// match between Envoy, the bootstrap and prism xds.
func TestComposeAgreesWithTheBootstrap(t *testing.T) {
	c := loadCompose(t)
	for _, want := range []string{"envoy", "xds", "extproc", "postgres", "nats", "kafka", "redis"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("compose.yaml has no service %s", want)
		}
	}

	mounts := map[string]string{} // container path → host path, for envoy
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			src := parts[0]
			if !strings.HasPrefix(src, "./") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s mounts volume %q, which is not declared", name, src)
				}
				continue
			}
			rel := strings.TrimPrefix(src, "./")
			if name == "envoy" {
				mounts[parts[1]] = rel
			}
			if rel == gencertsDir {
				continue // written by prism certs before `docker compose up`
			}
			if _, err := os.Stat(filepath.Join("..", rel)); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", name, src, err)
			}
		}
	}

	envoySvc, xdsSvc, extprocSvc := c.Services["envoy"], c.Services["xds"], c.Services["extproc"]
	i := slices.Index(envoySvc.Command, "-c")
	if i < 0 || i+1 >= len(envoySvc.Command) || mounts[envoySvc.Command[i+1]] != "envoy/bootstrap.yaml" {
		t.Errorf("envoy runs %v; want -c pointing at the mount of envoy/bootstrap.yaml (mounts %v)", envoySvc.Command, mounts)
	}
	if cl := flagValue(envoySvc.Command, "service-cluster"); cl != "" && cl != resource.ClusterEnvoy {
		t.Errorf("envoy --service-cluster %s, want %s", cl, resource.ClusterEnvoy)
	}

	// Envoy's ADS endpoint is the xds service on its --xds port.
	b := parseBootstrap(t)
	host, port := xdsEndpoint(t, b, b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName())
	if _, ok := c.Services[host]; !ok {
		t.Errorf("the bootstrap's ADS host %q is not a compose service", host)
	}
	if _, p := hostPort(t, flagValue(xdsSvc.Command, "xds")); uint32(p) != port {
		t.Errorf("prism xds serves ADS on %d, the bootstrap dials %d", p, port)
	}

	// Certificates: prism xds tells Envoy to read them where compose mounts
	// the gencerts output.
	certDir := flagValue(xdsSvc.Command, "envoy-cert-dir")
	if certDir == "" {
		certDir = model.DefaultCertDir
	}
	if mounts[certDir] != gencertsDir {
		t.Errorf("prism xds points Envoy at certificates in %s, but compose mounts %s there", certDir, mounts[certDir])
	}

	// The listener port prism xds generates is the one compose publishes.
	listen := flagValue(xdsSvc.Command, "envoy-port")
	if listen == "" {
		listen = strconv.Itoa(model.DefaultListenerPort)
	}
	published := false
	for _, p := range envoySvc.Ports {
		parts := strings.Split(p, ":")
		published = published || parts[len(parts)-1] == listen
	}
	if !published {
		t.Errorf("envoy publishes %v, but its listener is on %s", envoySvc.Ports, listen)
	}

	// prism xds sends Envoy to extproc where extproc listens.
	eh, ep := hostPort(t, flagValue(xdsSvc.Command, "extproc"))
	if _, ok := c.Services[eh]; !ok {
		t.Errorf("prism xds --extproc names host %q, which is not a compose service", eh)
	}
	if _, p := hostPort(t, flagValue(extprocSvc.Command, "grpc")); p != ep {
		t.Errorf("extproc listens on %d, prism xds sends Envoy to %d", p, ep)
	}
}

// TestComposeBuildsTheRootDockerfile checks that the image compose builds
// comes from the Dockerfile at the root and that it builds the prism binary.
func TestComposeBuildsTheRootDockerfile(t *testing.T) {
	data, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Prism struct {
			Build struct {
				Context    string `json:"context"`
				Dockerfile string `json:"dockerfile"`
			} `json:"build"`
		} `json:"x-prism"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Prism.Build.Context != "." || c.Prism.Build.Dockerfile == "" {
		t.Fatalf("x-prism.build = %+v, want context . and a dockerfile", c.Prism.Build)
	}
	df, err := os.ReadFile("../" + c.Prism.Build.Dockerfile)
	if err != nil {
		t.Fatalf("compose builds %s: %v", c.Prism.Build.Dockerfile, err)
	}
	if !strings.Contains(string(df), "./cmd/prism") || !strings.Contains(string(df), `ENTRYPOINT ["/prism"]`) {
		t.Fatalf("%s does not build ./cmd/prism into /prism", c.Prism.Build.Dockerfile)
	}
}
