package desired

import (
	"strings"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

func sqlite(name string) *configv1.Backend {
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: name + ".db"}}}
}

func TestValidateCoversEveryKind(t *testing.T) {
	s := New()
	s.Put(sqlite("lite"))
	s.Put(&configv1.Namespace{Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "lite"})
	if err := s.Validate(); err != nil {
		t.Fatalf("a valid state: %v", err)
	}
	s.Backends["alias"] = s.Backends["lite"] // stored under another name
	s.Put(&configv1.ExtprocPool{Name: "p", Endpoints: []string{"e:1"}, Weight: 0})
	s.Put(&configv1.Policy{Name: "pii"})
	s.Put(&configv1.Migration{Namespace: "ghost", From: "lite", To: "lite"})
	err := s.Validate()
	for _, want := range []string{
		`backend "lite" is stored under the name "alias"`,
		"every extproc pool has weight 0",
		"policy pii: no modules",
		"migration of ghost: unknown namespace",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v\nwant it to mention %q", err, want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := New()
	s.Put(sqlite("a"))
	c := s.Clone()
	c.Put(sqlite("b"))
	c.Delete(Backend, "a")
	if len(s.Backends) != 1 || s.Backends["a"] == nil || Equal(s, c) {
		t.Fatalf("changing a clone changed the original: %v", s.Backends)
	}
}

func TestUsersOfABackend(t *testing.T) {
	s := New()
	s.Put(sqlite("a"))
	s.Put(sqlite("b"))
	s.Put(&configv1.Namespace{Namespace: "n1", Backend: "a"})
	s.Put(&configv1.Namespace{Namespace: "n2", Backend: "b"})
	s.Put(&configv1.Migration{Namespace: "n2", From: "b", To: "a"})
	if got := strings.Join(s.Users("a"), ","); got != "namespace n1,migration of n2" {
		t.Fatalf("Users(a) = %s", got)
	}
}
