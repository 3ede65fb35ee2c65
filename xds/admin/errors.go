package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prism-gw/prism/xds/store"
)

// Error codes of the admin API: those of API.md, plus METHOD_NOT_ALLOWED and
// INTERNAL.
const (
	CodeInvalidArgument    = "INVALID_ARGUMENT"
	CodeUnauthenticated    = "UNAUTHENTICATED"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeFailedPrecondition = "FAILED_PRECONDITION"
	CodeTooLarge           = "TOO_LARGE"
	CodeUnavailable        = "UNAVAILABLE"
	CodeInternal           = "INTERNAL"
)

// apiError is an error as the operator sees it.
type apiError struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, CodeNotFound, fmt.Sprintf(format, args...)}
}

// conflict is a request that is well-formed but not allowed in the current
// state (a backend in use, a namespace moved without a migration).
func conflict(format string, args ...any) *apiError {
	return &apiError{http.StatusConflict, CodeFailedPrecondition, fmt.Sprintf(format, args...)}
}

// toAPIError maps any error of a handler to the API's status and code; it is
// the one place where store and validation errors meet HTTP.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, store.ErrInvalid) {
		msg := strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": ")
		return invalid("%s", strings.ReplaceAll(msg, "\n", "; "))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{http.StatusServiceUnavailable, CodeUnavailable, "the state store did not answer in time; retry the request"}
	}
	return &apiError{http.StatusInternalServerError, CodeInternal, "internal error; see the prism xds log"}
}

// detailedError is an API error with one line per problem, e.g. the
// compiler messages or failing tests of a refused policy; they go into the
// error body's "details".
type detailedError struct {
	*apiError
	details []string
}

// Unwrap lets toAPIError find the status and code.
func (e *detailedError) Unwrap() error { return e.apiError }

// errorDetails returns the details of a detailedError in err's chain.
func errorDetails(err error) []string {
	var de *detailedError
	if errors.As(err, &de) {
		return de.details
	}
	return nil
}

// writeError writes the API.md error shape, with details when there are
// any.
func writeError(w http.ResponseWriter, e *apiError, requestID string, details ...string) {
	type body struct {
		Code      string   `json:"code"`
		Message   string   `json:"message"`
		RequestID string   `json:"request_id"`
		Details   []string `json:"details,omitempty"`
	}
	writeJSON(w, e.Status, map[string]body{"error": {Code: e.Code, Message: e.Message, RequestID: requestID, Details: details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
