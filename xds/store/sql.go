package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/xds/desired"
)

// dialect holds what differs between SQLite and Postgres.
type dialect struct {
	name string
	// schema creates the tables; each statement runs on its own.
	schema []string
	// lockVersion reads the version and takes the write lock for the rest of
	// the transaction.
	lockVersion string
	// numbered placeholders ($1, $2, ...) instead of ?.
	numbered bool
	// prepareTx runs at the start of the schema transaction (Postgres takes
	// an advisory lock so that two replicas starting together do not race).
	prepareTx string
}

// sqlStore is the Store over database/sql.
type sqlStore struct {
	db *sql.DB
	d  dialect
}

// bodyFormat is how resources are stored: protojson with the proto field
// names, the same spelling operators write.
var bodyFormat = protojson.MarshalOptions{UseProtoNames: true}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect) (*sqlStore, error) {
	s := &sqlStore{db: db, d: d}
	if err := s.createSchema(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sqlStore) createSchema(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s store: begin: %w", s.d.name, err)
	}
	defer tx.Rollback()
	if s.d.prepareTx != "" {
		if _, err := tx.ExecContext(ctx, s.d.prepareTx); err != nil {
			return fmt.Errorf("%s store: %w", s.d.name, err)
		}
	}
	for _, stmt := range s.d.schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s store: create schema: %w", s.d.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s store: create schema: %w", s.d.name, err)
	}
	return nil
}

// q rewrites ? placeholders for dialects that number them.
func (s *sqlStore) q(query string) string {
	if !s.d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Load implements Store.
func (s *sqlStore) Load(ctx context.Context) (*desired.State, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.d.name == "postgres"})
	if err != nil {
		return nil, fmt.Errorf("%s store: begin: %w", s.d.name, err)
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM prism_xds_meta WHERE id = 1`).Scan(&version); err != nil {
		return nil, fmt.Errorf("%s store: read version: %w", s.d.name, err)
	}
	return s.readState(ctx, tx, version)
}

// readState reads every resource within tx.
func (s *sqlStore) readState(ctx context.Context, tx *sql.Tx, version int64) (*desired.State, error) {
	rows, err := tx.QueryContext(ctx, `SELECT kind, name, body FROM prism_xds_resources`)
	if err != nil {
		return nil, fmt.Errorf("%s store: read resources: %w", s.d.name, err)
	}
	defer rows.Close()
	st := desired.New()
	st.Version = version
	for rows.Next() {
		var kind, name, body string
		if err := rows.Scan(&kind, &name, &body); err != nil {
			return nil, fmt.Errorf("%s store: read resources: %w", s.d.name, err)
		}
		m, err := desired.NewMessage(desired.Kind(kind))
		if err != nil {
			return nil, fmt.Errorf("%s store: resource %s: %w", s.d.name, name, err)
		}
		// Unknown fields fail loudly: silently dropping a field that a newer
		// version wrote would lose it at the next write.
		if err := protojson.Unmarshal([]byte(body), m); err != nil {
			return nil, fmt.Errorf("%s store: %s %s: %w", s.d.name, kind, name, err)
		}
		if got := desired.Name(m); got != name {
			return nil, fmt.Errorf("%s store: %s row %q holds a resource named %q", s.d.name, kind, name, got)
		}
		if err := st.Put(m); err != nil {
			return nil, fmt.Errorf("%s store: %w", s.d.name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s store: read resources: %w", s.d.name, err)
	}
	return st, nil
}

// Update implements Store.
func (s *sqlStore) Update(ctx context.Context, change func(*desired.State) error) (*desired.State, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("%s store: begin: %w", s.d.name, err)
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, s.d.lockVersion).Scan(&version); err != nil {
		return nil, false, fmt.Errorf("%s store: lock version: %w", s.d.name, err)
	}
	cur, err := s.readState(ctx, tx, version)
	if err != nil {
		return nil, false, err
	}
	next := cur.Clone()
	if err := change(next); err != nil {
		return nil, false, err
	}
	if err := next.Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	writes, deletes := diff(cur, next)
	if len(writes) == 0 && len(deletes) == 0 {
		return cur, false, nil
	}
	next.Version = cur.Version + 1
	upsert := s.q(`INSERT INTO prism_xds_resources (kind, name, body, version) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, version = excluded.version`)
	for _, w := range writes {
		body, err := bodyFormat.Marshal(w.msg)
		if err != nil {
			return nil, false, fmt.Errorf("%s store: encode %s %s: %w", s.d.name, w.kind, w.name, err)
		}
		if _, err := tx.ExecContext(ctx, upsert, string(w.kind), w.name, string(body), next.Version); err != nil {
			return nil, false, fmt.Errorf("%s store: write %s %s: %w", s.d.name, w.kind, w.name, err)
		}
	}
	del := s.q(`DELETE FROM prism_xds_resources WHERE kind = ? AND name = ?`)
	for _, d := range deletes {
		if _, err := tx.ExecContext(ctx, del, string(d.kind), d.name); err != nil {
			return nil, false, fmt.Errorf("%s store: delete %s %s: %w", s.d.name, d.kind, d.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE prism_xds_meta SET version = ? WHERE id = 1`), next.Version); err != nil {
		return nil, false, fmt.Errorf("%s store: bump version: %w", s.d.name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("%s store: commit: %w", s.d.name, err)
	}
	return next, true, nil
}

// Close implements Store.
func (s *sqlStore) Close() error { return s.db.Close() }

type ref struct {
	kind desired.Kind
	name string
	msg  proto.Message
}

// diff lists the resources to write and to delete to turn a into b.
func diff(a, b *desired.State) (writes, deletes []ref) {
	for _, k := range desired.Kinds() {
		old, cur := a.Items(k), b.Items(k)
		for _, name := range b.SortedNames(k) {
			if m, ok := old[name]; !ok || !proto.Equal(m, cur[name]) {
				writes = append(writes, ref{k, name, cur[name]})
			}
		}
		for _, name := range a.SortedNames(k) {
			if _, ok := cur[name]; !ok {
				deletes = append(deletes, ref{kind: k, name: name})
			}
		}
	}
	return writes, deletes
}
