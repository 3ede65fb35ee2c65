package prism.pii_test

import data.prism.pii

owner := "spiffe://prism.local/profile-svc"

reader := "spiffe://prism.local/support-tool"

stranger := "spiffe://prism.local/someone-else"

pii_fields := [
	{"path": "email", "class": "email"},
	{"path": "address.street", "class": "address"},
	{"path": "ssn", "class": "ssn"},
]

req(subject, operation) := {
	"subject": subject,
	"namespace": "user-profiles",
	"operation": operation,
	"fields": pii_fields,
	"purpose": "",
	"request_id": "r-1",
	"access": {"owners": [owner], "readers": [reader], "require_identity": true},
}

all_fields(action) := {f.path: action | some f in pii_fields}

test_owner_reads_plaintext if {
	d := pii.decision with input as req(owner, "get")
	d.fields == all_fields("plain")
	d.audit
}

test_owner_writes if {
	d := pii.decision with input as req(owner, "put")
	d.fields == all_fields("plain")
	d.audit
}

test_reader_reads_masked if {
	every op in ["get", "scan", "mget", "query", "tail", "get_node", "get_edges", "traverse"] {
		d := pii.decision with input as req(reader, op)
		d.fields == all_fields("mask")
		d.audit
	}
}

test_reader_write_is_denied_and_audited if {
	d := pii.decision with input as req(reader, "put")
	d.fields == all_fields("deny")
	d.audit
}

test_stranger_is_denied_and_audited if {
	d := pii.decision with input as req(stranger, "get")
	d.fields == all_fields("deny")
	d.audit
}

test_no_identity_is_denied if {
	d := pii.decision with input as req("", "get")
	d.fields == all_fields("deny")
}

test_open_namespace_masks_reads_and_accepts_writes if {
	open := object.union(req(stranger, "get"), {"access": {"owners": [], "readers": []}})
	r := pii.decision with input as open
	r.fields == all_fields("mask")
	w := pii.decision with input as object.union(open, {"operation": "put"})
	w.fields == all_fields("plain")
}

test_no_pii_fields_no_audit if {
	d := pii.decision with input as object.union(req(owner, "get"), {"fields": []})
	d.fields == {}
	not d.audit
}

test_class_override_applies_to_allowed_requests_only if {
	overrides := {"reader": {"ssn": "redact"}, "none": {"ssn": "plain"}}
	d := pii.decision with input as req(reader, "get") with pii.class_overrides as overrides
	d.fields == {"email": "mask", "address.street": "mask", "ssn": "redact"}
	s := pii.decision with input as req(stranger, "get") with pii.class_overrides as overrides
	s.fields == all_fields("deny")
}
