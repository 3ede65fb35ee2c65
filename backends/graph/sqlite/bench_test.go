package sqlite

import (
	"testing"

	"github.com/prism-gw/prism/backends/graph/graphtest"
)

func BenchmarkPutNode(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			graphtest.BenchPutNode(b, openTemp(b, Options{Synchronous: sync}))
		})
	}
}

func BenchmarkTraverse(b *testing.B) {
	graphtest.BenchTraverse(b, openTemp(b, Options{}))
}
