package postgres

import (
	"testing"

	"github.com/prism-gw/prism/backends/graph/graphtest"
)

func BenchmarkPutNode(b *testing.B) {
	graphtest.BenchPutNode(b, openStore(b, testDSN(b)))
}

func BenchmarkTraverse(b *testing.B) {
	graphtest.BenchTraverse(b, openStore(b, testDSN(b)))
}
