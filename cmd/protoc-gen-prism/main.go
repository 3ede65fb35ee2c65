// Command protoc-gen-prism is a protoc plugin: for every message a .proto
// declares as a Prism namespace with the options of prism/options.proto it
// emits
//
//   - <file>.prism.yaml: the namespaces' config, for `prism ns apply -f`;
//   - <file>.prism.go: a typed client per message over the HTTP data API
//     (package github.com/prism-gw/prism/client) — Put/Get/Delete/Scan for
//     KeyValue, Append/Query/Tail for TimeSeries — in the Go package of
//     protoc-gen-go's output, with the PII fields in its doc comment.
//
// Usage:
//
//	protoc -I proto -I . --plugin=protoc-gen-prism=.bin/protoc-gen-prism \
//	  --go_out=. --go_opt=paths=source_relative \
//	  --prism_out=. --prism_opt=paths=source_relative examples/orders/v1/orders.proto
//
// An invalid declaration fails the protoc run with the message, field and
// option at fault.
package main

import (
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	protogen.Options{}.Run(func(p *protogen.Plugin) error {
		p.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		for _, f := range p.Files {
			if !f.Generate {
				continue
			}
			if err := generate(p, f); err != nil {
				return err
			}
		}
		return nil
	})
}
