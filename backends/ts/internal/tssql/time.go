package tssql

import "time"

// timeOf converts stored unix nanoseconds to a UTC time.
func timeOf(ns int64) time.Time { return time.Unix(0, ns).UTC() }
