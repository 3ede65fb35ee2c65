package kafka

import (
	"testing"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

func BenchmarkAppend100(b *testing.B) {
	tstest.BenchAppend(b, openStore(b, testCluster(b)), 100)
}

// BenchmarkQuery100 pages through 2000 events appended in one burst: all
// of them lie within the time window of every page, so each page reads the
// whole series — the worst case of a log driver's query (see package
// internal/logscan, whose tests show a page of a long series reading only
// its window).
func BenchmarkQuery100(b *testing.B) {
	tstest.BenchQuery(b, openStore(b, testCluster(b)), 100, ts.NamespaceOptions{})
}
