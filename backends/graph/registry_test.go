package graph

import (
	"context"
	"slices"
	"testing"
)

func TestRegistry(t *testing.T) {
	var opened string
	Register("test-registry", func(_ context.Context, dsn string) (Store, error) {
		opened = dsn
		return nil, nil
	})
	if !slices.Contains(Drivers(), "test-registry") {
		t.Fatalf("Drivers() = %v, want test-registry among them", Drivers())
	}
	if _, err := Open(context.Background(), "test-registry", "dsn-1"); err != nil || opened != "dsn-1" {
		t.Errorf("Open passed DSN %q (%v), want dsn-1", opened, err)
	}
	if _, err := Open(context.Background(), "no-such-driver", ""); err == nil {
		t.Error("Open of an unknown driver succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a driver name twice did not panic")
		}
	}()
	Register("test-registry", nil)
}
