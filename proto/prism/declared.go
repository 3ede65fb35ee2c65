package prism

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Declared is a message a client team declared as a namespace with
// (prism.namespace), and what its field options say. protoc-gen-prism and
// `prism ns apply` of a descriptor set both read declarations with Declare,
// so the YAML the plugin emits and the config applied from a descriptor set
// are the same.
type Declared struct {
	Message   protoreflect.MessageDescriptor
	Namespace *configv1.Namespace
	// Key is the KeyValue key or the TimeSeries series (a string field).
	Key protoreflect.FieldDescriptor
	// EventTime and EventID are the TimeSeries event's time and id, or nil.
	EventTime, EventID protoreflect.FieldDescriptor
	// MaxLength bounds string and bytes fields, by JSON path.
	MaxLength map[string]uint32
}

// Declarations reads every declared message of files, in file and message
// order, and reports every invalid declaration at once.
func Declarations(files *protoregistry.Files) ([]*Declared, error) {
	var out []*Declared
	var errs []error
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		d, err := FileDeclarations(fd)
		out = append(out, d...)
		if err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return out, errors.Join(errs...)
}

// FileDeclarations reads the declared messages of one file (top-level and
// nested).
func FileDeclarations(fd protoreflect.FileDescriptor) ([]*Declared, error) {
	var out []*Declared
	var errs []error
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			md := ms.Get(i)
			d, err := Declare(md)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", fd.Path(), err))
			} else if d != nil {
				out = append(out, d)
			}
			walk(md.Messages())
		}
	}
	walk(fd.Messages())
	return out, errors.Join(errs...)
}

// NamespaceOptionsOf returns the message's (prism.namespace) option, or nil.
func NamespaceOptionsOf(md protoreflect.MessageDescriptor) *NamespaceOptions {
	opts, ok := md.Options().(*descriptorpb.MessageOptions)
	if !ok || opts == nil || !proto.HasExtension(opts, E_Namespace) {
		return nil
	}
	return proto.GetExtension(opts, E_Namespace).(*NamespaceOptions)
}

// FieldOptionsOf returns the field's (prism.field) option, or nil.
func FieldOptionsOf(fd protoreflect.FieldDescriptor) *FieldOptions {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil || !proto.HasExtension(opts, E_Field) {
		return nil
	}
	return proto.GetExtension(opts, E_Field).(*FieldOptions)
}

// Declare reads one message's declaration; nil, nil when it has no
// (prism.namespace) option. Errors name the message, the field and the
// option at fault.
func Declare(md protoreflect.MessageDescriptor) (*Declared, error) {
	no := NamespaceOptionsOf(md)
	if no == nil {
		return nil, nil
	}
	where := "message " + string(md.FullName())
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{where}, args...)...)
	}
	ns := &configv1.Namespace{
		Namespace: no.GetNamespace(), Abstraction: no.GetAbstraction(), Backend: no.GetBackend(),
		AccessPattern: no.GetAccessPattern(), EstimatedReadRps: no.GetEstimatedReadRps(), EstimatedWriteRps: no.GetEstimatedWriteRps(),
		EstimatedDataSizeGb: no.GetEstimatedDataSizeGb(), RetentionDays: no.GetRetentionDays(), Consistency: no.GetConsistency(),
		Cache: no.GetCache(), EstimatedRecordBytes: no.GetEstimatedRecordBytes(), Access: no.GetAccess(), Limits: no.GetLimits(), Policy: no.GetPolicy(),
	}
	if err := configv1.ValidateName(ns.GetNamespace()); err != nil {
		return nil, bad("(prism.namespace).namespace: %v", err)
	}
	switch ns.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES:
	case configv1.Abstraction_GRAPH:
		return nil, bad("(prism.namespace).abstraction: GRAPH has no typed client; declare graph namespaces in YAML")
	default:
		return nil, bad("(prism.namespace).abstraction: is required (KEYVALUE or TIMESERIES)")
	}
	if ns.Backend == "" {
		ns.Backend = "auto"
	}
	d := &Declared{Message: md, Namespace: ns, MaxLength: map[string]uint32{}}
	schema := &configv1.Schema{}
	record := uint32(0)
	estimable := true
	var walk func(m protoreflect.MessageDescriptor, prefix string, depth int) error
	walk = func(m protoreflect.MessageDescriptor, prefix string, depth int) error {
		fields := m.Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			path := prefix + string(f.Name())
			at := func(format string, args ...any) error {
				return bad("field %s: (prism.field)."+format, append([]any{path}, args...)...)
			}
			fo := FieldOptionsOf(f)
			if fo == nil {
				fo = &FieldOptions{}
			}
			isString := f.Kind() == protoreflect.StringKind && !f.IsList() && !f.IsMap()
			if fo.GetPii() != configv1.PiiClass_PII_CLASS_UNSPECIFIED {
				if _, ok := configv1.PiiClass_name[int32(fo.GetPii())]; !ok {
					return at("pii: unknown class %d", fo.GetPii())
				}
				if fo.EncryptAtRest != nil && !fo.GetEncryptAtRest() {
					return at("encrypt_at_rest: false is not allowed: PII is always encrypted at rest")
				}
				if !isString {
					return at("pii: only string fields can be PII (the class masks text)")
				}
				schema.Pii = append(schema.Pii, &configv1.PiiField{Path: path, Class: fo.GetPii(), EncryptAtRest: fo.EncryptAtRest, AccessAudit: fo.GetAccessAudit()})
			} else if fo.EncryptAtRest != nil || fo.GetAccessAudit() {
				return at("encrypt_at_rest and access_audit apply to PII fields only: set pii")
			}
			if fo.GetIndex() {
				if f.IsList() || f.IsMap() || f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.BytesKind {
					return at("index: only scalar fields can be indexed")
				}
				schema.Indexes = append(schema.Indexes, &configv1.Index{Path: path})
			}
			if n := fo.GetMaxLength(); n > 0 {
				if f.Kind() != protoreflect.StringKind && f.Kind() != protoreflect.BytesKind {
					return at("max_length: only string and bytes fields have a length")
				}
				d.MaxLength[path] = n
			}
			for _, m := range []struct {
				set  bool
				name string
				to   *protoreflect.FieldDescriptor
				ok   bool
				want string
			}{
				{fo.GetKey(), "key", &d.Key, isString, "a string field"},
				{fo.GetEventTime(), "event_time", &d.EventTime, f.Message() != nil && f.Message().FullName() == "google.protobuf.Timestamp" && !f.IsList(), "a google.protobuf.Timestamp field"},
				{fo.GetEventId(), "event_id", &d.EventID, isString, "a string field"},
			} {
				if !m.set {
					continue
				}
				switch {
				case depth > 0:
					return at("%s: only a top-level field can be the %s", m.name, m.name)
				case !m.ok:
					return at("%s: must be %s", m.name, m.want)
				case *m.to != nil:
					return at("%s: %s is already the %s", m.name, (*m.to).Name(), m.name)
				}
				*m.to = f
			}
			switch {
			case f.Kind() == protoreflect.StringKind || f.Kind() == protoreflect.BytesKind:
				if n := fo.GetMaxLength(); n > 0 && !f.IsList() {
					record += n + uint32(len(path)) + 6
				} else {
					estimable = false
				}
			case f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && f.Message().FullName() != "google.protobuf.Timestamp":
				if depth >= 8 {
					return at("nesting deeper than 8 levels")
				}
				if err := walk(f.Message(), path+".", depth+1); err != nil {
					return err
				}
			case f.IsList() || f.IsMap():
				estimable = false
			default:
				record += 32 + uint32(len(path))
			}
		}
		return nil
	}
	if err := walk(md, "", 0); err != nil {
		return nil, err
	}
	if d.Key == nil {
		what := "key"
		if ns.GetAbstraction() == configv1.Abstraction_TIMESERIES {
			what = "series"
		}
		return nil, bad("no field has (prism.field).key = true: a %s message needs one string field as its %s",
			configv1.Abstraction_name[int32(ns.GetAbstraction())], what)
	}
	if ns.GetAbstraction() == configv1.Abstraction_KEYVALUE && (d.EventTime != nil || d.EventID != nil) {
		return nil, bad("event_time and event_id are for TIMESERIES messages")
	}
	if ns.GetEstimatedRecordBytes() == 0 && estimable && record > 0 {
		ns.EstimatedRecordBytes = record
	}
	if len(schema.Pii) > 0 || len(schema.Indexes) > 0 {
		ns.Schema = schema
	}
	return d, nil
}
