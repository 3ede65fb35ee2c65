// Package config reads the declarative config files operators write — the
// YAML form of prism.config.v1 messages — and checks them.
package config

import (
	"errors"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Parse decodes a DevConfig from YAML (or JSON). Field names are those of the
// proto (snake_case); enums by name, case-insensitively as protojson allows
// only upper case, so lower-case names are accepted here too.
func Parse(data []byte) (*configv1.DevConfig, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	js, err = upperEnums(js)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg configv1.DevConfig
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := Validate(&cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Load reads and parses a config file.
func Load(path string) (*configv1.DevConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks names, references and limits of a whole config and reports
// every problem at once.
func Validate(cfg *configv1.DevConfig) error {
	var errs []error
	backends := map[string]*configv1.Backend{}
	for i, b := range cfg.GetBackends() {
		if err := configv1.ValidateName(b.GetName()); err != nil {
			errs = append(errs, fmt.Errorf("backends[%d]: %w", i, err))
			continue
		}
		if _, dup := backends[b.GetName()]; dup {
			errs = append(errs, fmt.Errorf("backends[%d]: backend %s declared twice", i, b.GetName()))
		}
		if b.GetDriver() == nil {
			errs = append(errs, fmt.Errorf("backend %s: no driver (sqlite, postgres, ...) configured", b.GetName()))
		}
		backends[b.GetName()] = b
	}
	seen := map[string]bool{}
	for i, n := range cfg.GetNamespaces() {
		if err := configv1.ValidateName(n.GetNamespace()); err != nil {
			errs = append(errs, fmt.Errorf("namespaces[%d]: %w", i, err))
			continue
		}
		name := n.GetNamespace()
		if seen[name] {
			errs = append(errs, fmt.Errorf("namespace %s declared twice", name))
		}
		seen[name] = true
		if n.GetAbstraction() == configv1.Abstraction_ABSTRACTION_UNSPECIFIED {
			errs = append(errs, fmt.Errorf("namespace %s: abstraction is required (keyvalue, timeseries or graph)", name))
		}
		if _, ok := backends[n.GetBackend()]; !ok {
			errs = append(errs, fmt.Errorf("namespace %s: unknown backend %q", name, n.GetBackend()))
		}
		if l := n.GetLimits(); l != nil && l.GetRequestTimeout() != nil {
			if d := l.GetRequestTimeout().AsDuration(); d < 0 {
				errs = append(errs, fmt.Errorf("namespace %s: limits.request_timeout is negative", name))
			}
		}
	}
	return errors.Join(errs...)
}
