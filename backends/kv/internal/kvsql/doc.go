// Package kvsql holds what the SQL-backed KV drivers share and must agree on:
// the version clock and version syntax, the key range of a scan query, and
// how a scan page is cut.
package kvsql
