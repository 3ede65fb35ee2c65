package prism.authz_test

import data.prism.authz

owner := "spiffe://prism.local/profile-svc"

reader := "spiffe://prism.local/support-tool"

stranger := "spiffe://prism.local/someone-else"

access := {"owners": [owner], "readers": [reader], "require_identity": true}

req(subject, operation) := {
	"subject": subject,
	"namespace": "user-profiles",
	"operation": operation,
	"access": access,
}

test_owner_may_do_every_operation if {
	every op in authz.read_operations | authz.write_operations {
		authz.allow with input as req(owner, op)
	}
	authz.role == "owner" with input as req(owner, "get")
}

test_reader_may_read if {
	every op in authz.read_operations {
		authz.allow with input as req(reader, op)
	}
	authz.role == "reader" with input as req(reader, "get")
}

test_reader_may_not_write if {
	every op in authz.write_operations {
		not authz.allow with input as req(reader, op)
	}
	d := authz.decision with input as req(reader, "put")
	d.allow == false
	contains(d.reason, "readers only read")
}

test_stranger_is_denied if {
	every op in authz.read_operations | authz.write_operations {
		not authz.allow with input as req(stranger, op)
	}
	d := authz.decision with input as req(stranger, "get")
	d.role == "none"
	contains(d.reason, "neither an owner nor a reader")
}

test_no_identity_is_denied if {
	d := authz.decision with input as req("", "get")
	d.allow == false
	d.reason == "no client identity"
}

test_owner_and_reader_is_owner if {
	both := {"owners": [owner], "readers": [owner]}
	authz.role == "owner" with input as object.union(req(owner, "put"), {"access": both})
	authz.allow with input as object.union(req(owner, "put"), {"access": both})
}

test_unknown_operation_is_denied if {
	d := authz.decision with input as req(owner, "drop_table")
	d.allow == false
	d.reason == `unknown operation "drop_table"`
}

test_open_namespace_allows_identified_clients if {
	open := {"subject": stranger, "namespace": "scratch", "operation": "put", "access": {}}
	authz.allow with input as open
	authz.role == "open" with input as open
}

test_open_namespace_allows_anonymous_unless_identity_required if {
	anon := {"subject": "", "namespace": "scratch", "operation": "get", "access": {"owners": [], "readers": []}}
	authz.allow with input as anon
	not authz.allow with input as object.union(anon, {"access": {"require_identity": true}})
}

test_missing_access_is_open if {
	authz.allow with input as {"subject": stranger, "namespace": "scratch", "operation": "get"}
}
