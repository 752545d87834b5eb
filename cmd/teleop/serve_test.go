package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

// /readyz passes only once the process has said its checks are registered
// and every one of them passes.
func TestReadyzHoldsUntilStartedAndEveryCheckPasses(t *testing.T) {
	failing := func() error { return errors.New("not synced yet") }
	passing := func() error { return nil }
	tests := []struct {
		name     string
		checks   map[string]func() error
		started  bool
		wantCode int
		wantBody string
	}{
		{name: "nothing registered, not started", wantCode: http.StatusServiceUnavailable, wantBody: "starting: checks not registered yet\n"},
		{name: "passing checks, not started", checks: map[string]func() error{"kubernetes api": passing}, wantCode: http.StatusServiceUnavailable, wantBody: "starting: checks not registered yet\n"},
		{name: "started, all pass", checks: map[string]func() error{"kubernetes api": passing, "teleapp cache": passing}, started: true, wantCode: http.StatusOK, wantBody: "ok\n"},
		{name: "started, one fails", checks: map[string]func() error{"kubernetes api": passing, "teleapp cache": failing}, started: true, wantCode: http.StatusServiceUnavailable, wantBody: "teleapp cache: not synced yet\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &readiness{}
			for name, check := range tt.checks {
				r.add(name, check)
			}
			if tt.started {
				r.start()
			}
			rec := httptest.NewRecorder()
			r.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			assert.Equal(t, tt.wantCode, rec.Code)
			assert.Equal(t, tt.wantBody, rec.Body.String())
		})
	}
}
