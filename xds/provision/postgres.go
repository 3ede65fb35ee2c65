package provision

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/prism-gw/prism/backends/graph"
	_ "github.com/prism-gw/prism/backends/graph/postgres" // the drivers create their tables
	"github.com/prism-gw/prism/backends/kv"
	_ "github.com/prism-gw/prism/backends/kv/postgres"
	"github.com/prism-gw/prism/backends/ts"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/planner"
)

// jsonHelperSQL creates prism_json, the function the indexes are built on:
// values are bytea (any content type), so it returns NULL for a value that
// is not JSON instead of failing its write. IMMUTABLE is what an index
// expression needs, and true here: the conversion from UTF-8 depends on
// nothing but its input.
const jsonHelperSQL = `
CREATE OR REPLACE FUNCTION prism_json(b bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
	RETURN convert_from(b, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
	RETURN NULL;
END
$$`

// helperLock serializes concurrent CREATE OR REPLACE FUNCTION, which can
// fail on the catalog's unique index ("prism_js" in ASCII, as an int8).
const helperLock = `SELECT pg_advisory_xact_lock(8102654624011981683)`

// tableSQL finds a table in the first schema of the search_path, where the
// drivers create theirs.
const tableSQL = `
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p')`

// indexesSQL lists the indexes of a table restricted to one namespace's
// rows: those a plan created for it.
const indexesSQL = `
SELECT i.relname FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND t.relname = $1
  AND pg_catalog.pg_get_expr(x.indpred, x.indrelid) = $2 AND x.indisvalid`

// invalidSQL finds an index left INVALID by an interrupted concurrent
// build; CREATE INDEX IF NOT EXISTS would take it for done.
const invalidSQL = `
SELECT count(*) FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = current_schema() AND i.relname = $1 AND NOT x.indisvalid`

const helperSQL = `
SELECT count(*) FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.proname = 'prism_json'`

// nsPredicate is how Postgres prints the WHERE of the indexes of ns.
func nsPredicate(ns string) string { return "(ns = '" + ns + "'::text)" }

func observeTable(ctx context.Context, b *configv1.Backend, ns string, want *planner.Table) (planner.Observed, error) {
	have := planner.Observed{Indexes: map[string]bool{}}
	conn, err := pgx.Connect(ctx, b.GetPostgres().GetDsn())
	if err != nil {
		return have, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, tableSQL, want.Name).Scan(&n); err != nil {
		return have, fmt.Errorf("table %s: %w", want.Name, err)
	}
	have.TableExists = n > 0
	if err := conn.QueryRow(ctx, helperSQL).Scan(&n); err != nil {
		return have, fmt.Errorf("function prism_json: %w", err)
	}
	have.HelperExists = n > 0
	rows, err := conn.Query(ctx, indexesSQL, want.Name, nsPredicate(ns))
	if err != nil {
		return have, fmt.Errorf("indexes of %s: %w", want.Name, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return have, fmt.Errorf("indexes of %s: %w", want.Name, err)
	}
	for _, name := range names {
		have.Indexes[name] = true
	}
	return have, nil
}

// applyTable lets the driver of the abstraction create its tables, then
// creates the namespace's indexes.
func applyTable(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, t *planner.Table) error {
	dsn := b.GetPostgres().GetDsn()
	var st io.Closer
	var err error
	switch ns.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE:
		st, err = kv.Open(ctx, "postgres", dsn)
	case configv1.Abstraction_TIMESERIES:
		st, err = ts.Open(ctx, "postgres", dsn)
	case configv1.Abstraction_GRAPH:
		st, err = graph.Open(ctx, "postgres", dsn)
	}
	if err != nil {
		return fmt.Errorf("creating table %s: %w", t.Name, err)
	}
	if st != nil {
		st.Close()
	}
	if len(t.Indexes) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, helperLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, jsonHelperSQL)
		return err
	})
	if err != nil {
		return fmt.Errorf("function prism_json: %w", err)
	}
	for _, ix := range t.Indexes {
		var invalid int
		if err := conn.QueryRow(ctx, invalidSQL, ix.Name).Scan(&invalid); err != nil {
			return fmt.Errorf("index %s: %w", ix.Name, err)
		}
		if invalid > 0 {
			if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+ix.Name); err != nil {
				return fmt.Errorf("dropping the invalid index %s to rebuild it: %w", ix.Name, err)
			}
		}
		if _, err := conn.Exec(ctx, ix.SQL); err != nil {
			return fmt.Errorf("index %s on %s: %w", ix.Name, ix.Path, err)
		}
	}
	return nil
}
