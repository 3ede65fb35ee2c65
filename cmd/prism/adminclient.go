package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// adminClient calls the admin API of the control plane: the one client of
// the operator commands (`prism migrate`, `ns`, `policy push`).
type adminClient struct {
	base, token string
	http        *http.Client
}

// adminError is the admin API's error body (API.md).
type adminError struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	} `json:"error"`
}

// do sends body (raw []byte, or any value as JSON; nil: none) to path
// (with its query) and decodes a 200 answer into out (nil: ignored). Any
// other answer becomes an error with the API's code, message and details.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader = http.NoBody
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae adminError
		if json.Unmarshal(raw, &ae) != nil || ae.Error.Code == "" {
			return fmt.Errorf("admin API %s %s: HTTP %d: %.200s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
		}
		msg := fmt.Sprintf("%s (HTTP %d %s)", ae.Error.Message, resp.StatusCode, ae.Error.Code)
		for _, d := range ae.Error.Details {
			msg += "\n  " + strings.ReplaceAll(d, "\n", "\n    ")
		}
		return errors.New(msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}
