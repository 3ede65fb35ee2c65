# METADATA
# title: Prism PII field actions
# description: |
#   For each PII field of the value: plain, mask, redact or deny, and
#   whether the access is audited. Input and output are documented in
#   policies/README.md.
package prism.pii

import data.prism.authz

# action is what every PII field gets unless class_overrides says otherwise:
# owners see plaintext, readers (and everyone on an open namespace) masked
# values, anyone the authz policy denies nothing at all.
default action := "deny"

action := "plain" if {
	authz.allow
	authz.role == "owner"
} else := "plain" if {
	# A write stores every PII field encrypted whatever the action; "plain"
	# only says the write may carry the field.
	authz.allow
	authz.kind == "write"
} else := "mask" if authz.allow

# class_overrides changes the action of a role for a class, e.g. to
# redact SSNs for readers and show owners masked card numbers:
#
#   class_overrides := {"reader": {"ssn": "redact"}, "owner": {"credit_card": "mask"}}
#
# It only applies to allowed requests; a denied one stays denied.
class_overrides := {}

role_overrides := object.get(class_overrides, authz.role, {}) if authz.allow
else := {}

# fields maps each PII path of the input to its action.
fields[f.path] := object.get(role_overrides, f.class, action) if some f in input.fields

# Every read and write of a namespace with PII fields is audited, denied
# attempts included.
default audit := false

audit if count(input.fields) > 0

# decision is what Prism reads.
decision := {"fields": fields, "audit": audit}
