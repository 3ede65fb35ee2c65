# METADATA
# title: Prism authorization
# description: |
#   May this subject perform this operation on this namespace?
#   Input and output are documented in policies/README.md.
package prism.authz

# operation_kinds says whether each data API operation reads or writes. An
# operation missing here is denied to everyone.
operation_kinds := {
	# KeyValue
	"get": "read", "scan": "read", "mget": "read",
	"put": "write", "delete": "write", "batch": "write",
	# TimeSeries
	"query": "read", "tail": "read",
	"append": "write",
	# Graph
	"get_node": "read", "get_edges": "read", "traverse": "read",
	"put_node": "write", "delete_node": "write", "put_edge": "write", "delete_edge": "write",
}

read_operations := {op | operation_kinds[op] == "read"}

write_operations := {op | operation_kinds[op] == "write"}

# kind is "read" or "write"; undefined for an unknown operation.
kind := operation_kinds[input.operation]

identified if input.subject != ""

# A namespace that lists no owners and no readers is open: Envoy lets any
# authenticated client through, and so does this policy (PII stays masked,
# see prism.pii).
open if {
	count(object.get(input.access, "owners", [])) == 0
	count(object.get(input.access, "readers", [])) == 0
}

open if not input.access

# role is the subject's relation to the namespace. An identity listed as
# both owner and reader is an owner.
default role := "none"

role := "owner" if {
	identified
	input.subject in input.access.owners
} else := "reader" if {
	identified
	input.subject in input.access.readers
} else := "open" if {
	open
	identified
} else := "open" if {
	open
	not input.access.require_identity
}

default allow := false

# Owners may do everything.
allow if {
	role == "owner"
	kind
}

# Readers, and anyone on an open namespace, may read.
allow if {
	kind == "read"
	role in {"reader", "open"}
}

# Anyone on an open namespace may write.
allow if {
	kind == "write"
	role == "open"
}

# reason explains the answer; Prism returns it in 403 error messages.
default reason := "denied by policy"

reason := "allowed" if allow
else := sprintf("unknown operation %q", [input.operation]) if not kind
else := "no client identity" if not identified
else := sprintf("%s may not %s in namespace %s: readers only read", [input.subject, input.operation, input.namespace]) if role == "reader"
else := sprintf("%s is neither an owner nor a reader of namespace %s", [input.subject, input.namespace]) if role == "none"

# decision is what Prism reads.
decision := {"allow": allow, "role": role, "reason": reason}
