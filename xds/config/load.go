// Package config reads the declarative config files operators write — the
// YAML form of prism.config.v1 messages — and checks them.
package config

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
	if string(js) == "null" {
		return nil, fmt.Errorf("config: empty document")
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

// ParseMessage decodes one config message (a Namespace, Backend, ...) from
// YAML or JSON by the rules of Parse: proto field names, enums by name in
// any case, unknown fields refused. It does not validate.
func ParseMessage(data []byte, m proto.Message) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if string(js) == "null" {
		return fmt.Errorf("config: empty document")
	}
	js, err = upperEnums(js)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, m); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
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
