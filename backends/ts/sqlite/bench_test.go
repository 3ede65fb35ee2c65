package sqlite

import (
	"testing"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

func BenchmarkAppend1(b *testing.B) {
	tstest.BenchAppend(b, openTemp(b, Options{}), 1)
}

func BenchmarkAppend100(b *testing.B) {
	tstest.BenchAppend(b, openTemp(b, Options{}), 100)
}

func BenchmarkQuery100(b *testing.B) {
	tstest.BenchQuery(b, openTemp(b, Options{}), 100, ts.NamespaceOptions{})
}

var _ ts.Store = (*Store)(nil)
