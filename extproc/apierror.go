package extproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/extproc/pii"
)

// Stable error codes of the data API (API.md). Clients match on these, never
// on messages.
const (
	CodeInvalidArgument    = "INVALID_ARGUMENT"
	CodeUnauthenticated    = "UNAUTHENTICATED"
	CodePermissionDenied   = "PERMISSION_DENIED"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeAlreadyExists      = "ALREADY_EXISTS"
	CodeFailedPrecondition = "FAILED_PRECONDITION"
	CodeTooLarge           = "TOO_LARGE"
	CodeResourceExhausted  = "RESOURCE_EXHAUSTED"
	CodeUnavailable        = "UNAVAILABLE"
	CodeInternal           = "INTERNAL"
)

// apiError is an error as the client sees it: status, stable code, message,
// and for batches the index of the failing op.
type apiError struct {
	Status  int
	Code    string
	Message string
	Index   *int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf(format, args...)}
}

func methodNotAllowed(method, what string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
		Message: fmt.Sprintf("method %s is not allowed on %s", method, what)}
}

func unavailable() *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "backend unavailable or timed out; retry the request"}
}

// toAPIError maps a backend error to the API's status and code. It is the one
// place where driver errors meet HTTP semantics.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var opErr *kv.OpError
	if errors.As(err, &opErr) {
		inner := toAPIError(opErr.Err)
		idx := opErr.Index
		return &apiError{Status: inner.Status, Code: inner.Code, Message: fmt.Sprintf("op %d: %s", idx, inner.Message), Index: &idx}
	}
	switch {
	case errors.Is(err, errAuditUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "audit log unavailable; the access was not performed"}
	case errors.Is(err, pii.ErrNotJSON), errors.Is(err, pii.ErrTooDeep):
		return invalid("%s", err.Error())
	case errors.Is(err, pii.ErrDenied):
		return &apiError{Status: http.StatusForbidden, Code: CodePermissionDenied, Message: "access to a PII field denied by policy"}
	case errors.Is(err, pii.ErrDecrypt), errors.Is(err, pii.ErrUnknownKey):
		return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	case errors.Is(err, graph.ErrInvalid):
		return invalid("%s", err.Error())
	case errors.Is(err, graph.ErrNotFound):
		return notFound("%s", err.Error())
	case errors.Is(err, graph.ErrUnavailable):
		return unavailable()
	case errors.Is(err, ts.ErrInvalidArgument):
		return invalid("%s", err.Error())
	case errors.Is(err, ts.ErrTooLarge):
		return tooLarge("%s", err.Error())
	case errors.Is(err, ts.ErrNotFound):
		return notFound("namespace is not provisioned on its backend")
	case errors.Is(err, ts.ErrUnavailable):
		return unavailable()
	case errors.Is(err, kv.ErrNotFound):
		return notFound("key not found")
	case errors.Is(err, kv.ErrVersionMismatch):
		return &apiError{Status: http.StatusPreconditionFailed, Code: CodeFailedPrecondition, Message: "version does not match the current version of the key"}
	case errors.Is(err, kv.ErrExists):
		return &apiError{Status: http.StatusConflict, Code: CodeAlreadyExists, Message: "key already exists"}
	case errors.Is(err, kv.ErrInvalidArgument):
		return invalid("%v", err)
	case errors.Is(err, kv.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable()
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}
