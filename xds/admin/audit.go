package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prism-gw/prism/extproc/audit"
)

// AuditReader reads the newest audit records of a namespace, newest first.
// The audit log of extproc implements it; the interface lives here so that
// a control plane without a log simply has none.
type AuditReader interface {
	Recent(ctx context.Context, namespace string, limit int) ([]audit.Record, error)
}

// Bounds of ?limit= on GET /v1/admin/audit.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 1000
)

// auditRecord is an audit record as the admin API shows it: who accessed
// which fields of what, and what the policy decided. Records hold field
// names, never values; the chain links (prev, hash) are left to
// `prism audit verify`.
type auditRecord struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Subject   string    `json:"subject"`
	Namespace string    `json:"namespace"`
	Key       string    `json:"key"`
	Operation string    `json:"operation"`
	Fields    []string  `json:"fields"`
	Decision  string    `json:"decision"`
	RequestID string    `json:"request_id"`
}

// audit serves GET /v1/admin/audit?namespace=NS&limit=N.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Audit == nil {
		return notFound("audit log not configured: this control plane does not run extproc (prism dev does; read it with prism audit)")
	}
	q := r.URL.Query()
	ns := q.Get("namespace")
	if ns == "" {
		return invalid("namespace is required: GET /v1/admin/audit?namespace=NS")
	}
	limit := defaultAuditLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return invalid("limit %q: want a number from 1 to %d", s, maxAuditLimit)
		}
		limit = n
	}
	recs, err := h.opts.Audit.Recent(r.Context(), ns, limit)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	out := make([]auditRecord, 0, len(recs))
	for _, rec := range recs {
		out = append(out, auditRecord{
			Seq: rec.Seq, Time: rec.Time, Subject: rec.Subject, Namespace: rec.Namespace, Key: rec.Key,
			Operation: rec.Operation, Fields: nonNil(rec.Fields), Decision: rec.Decision, RequestID: rec.RequestID,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"namespace": ns, "records": out})
	return nil
}
