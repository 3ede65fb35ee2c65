package extproc

import (
	"encoding/json"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// reply is the HTTP response extproc asks Envoy to send.
type reply struct {
	status  int
	headers []*corev3.HeaderValueOption
	body    []byte
}

// header adds a response header. Only raw_value is set: Envoy rejects a
// HeaderValue with both value and raw_value.
func (r *reply) header(key, value string) {
	r.headers = append(r.headers, &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	})
}

// jsonReply makes a reply with a JSON body.
func jsonReply(status int, v any) *reply {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value passed here marshals; this guards a programming error.
		return errorReply(&apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "encoding the response failed"}, "")
	}
	r := &reply{status: status, body: body}
	r.header("content-type", contentTypeJSON)
	return r
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Index     *int   `json:"index,omitempty"`
}

// errorReply renders an apiError in the shape of API.md.
func errorReply(e *apiError, requestID string) *reply {
	body, _ := json.Marshal(errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, RequestID: requestID, Index: e.Index}})
	r := &reply{status: e.Status, body: body}
	r.header("content-type", contentTypeJSON)
	if e.Status == http.StatusMethodNotAllowed {
		r.header("allow", "GET, PUT, DELETE, POST")
	}
	return r
}

// immediate turns a reply into the ImmediateResponse that ends the stream.
func (r *reply) immediate(requestID string) *extprocv3.ProcessingResponse {
	r.header("x-request-id", requestID)
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(r.status)},
				Headers: &extprocv3.HeaderMutation{SetHeaders: r.headers},
				Body:    r.body,
			},
		},
	}
}

// continueHeaders lets Envoy go on with the request (pass-through paths, or
// a data API request whose body is still to come).
func continueHeaders() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{}},
		},
	}
}
