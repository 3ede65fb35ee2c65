// Package crossdriver holds the tests that need two SQL TimeSeries stores
// of different drivers at once: a namespace copied from one to the other
// (ts.Replica.Copy, as a migration's backfill does) must answer the cursors
// the first one issued at the same events, and cursors issued before the
// drivers shared one format must still be read. It has no code of its own;
// package tstest checks each driver alone.
package crossdriver
