package telegramemu

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Fault makes the emulator misbehave for some calls. It applies to the next
// Count matching calls, or to every matching call until Until, or whichever
// ends first when both are set. A faulted call is first delayed by Delay,
// then has its connection dropped (Drop), or is answered with Status (a 5xx,
// or 429 with RetryAfter seconds, default 1), or, with neither, proceeds
// normally after the delay.
type Fault struct {
	// Method is the Bot API method to fail, e.g. "sendMessage"; "" means all.
	Method     string
	Count      int
	Until      time.Time
	Status     int
	RetryAfter int
	Delay      time.Duration
	Drop       bool
}

type activeFault struct {
	Fault
	remaining int // calls left when Count is set
}

// Fail injects f. It replaces any earlier Fault for the same Method, so a
// Fault whose Until has already passed ends an earlier one ("Telegram is
// back"); a Fault for one method and a Fault for all ("") coexist, the one
// injected first applying. A Fault without Count or Until, or with a Status
// that is not an HTTP error, fails the test and is ignored.
func (s *Server) Fail(f Fault) {
	if f.Count <= 0 && f.Until.IsZero() {
		s.t.Errorf("telegramemu: Fault %+v needs Count > 0 or Until", f)
		return
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		s.t.Errorf("telegramemu: Fault status %d is not an HTTP error status", f.Status)
		return
	}
	if f.Status == http.StatusTooManyRequests && f.RetryAfter <= 0 {
		f.RetryAfter = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = slices.DeleteFunc(s.faults, func(old *activeFault) bool { return strings.EqualFold(old.Method, f.Method) })
	s.faults = append(s.faults, &activeFault{Fault: f, remaining: f.Count})
}

// takeFault returns the first active fault matching method and uses it up by
// one call, dropping faults that have ended. Callers hold s.mu.
func (s *Server) takeFault(method string) (Fault, bool) {
	now := s.opts.Now()
	live := s.faults[:0]
	var taken *Fault
	for _, f := range s.faults {
		if f.ended(now) {
			continue
		}
		if taken == nil && (f.Method == "" || strings.EqualFold(f.Method, method)) {
			taken = &f.Fault
			if f.Count > 0 {
				f.remaining--
			}
		}
		if !f.ended(now) {
			live = append(live, f)
		}
	}
	clear(s.faults[len(live):])
	s.faults = live
	if taken == nil {
		return Fault{}, false
	}
	s.stats.FaultsInjected++
	return *taken, true
}

func (f *activeFault) ended(now time.Time) bool {
	return (f.Count > 0 && f.remaining <= 0) || (!f.Until.IsZero() && !now.Before(f.Until))
}

// injure applies f to the request and reports whether it should still be
// served normally.
func (s *Server) injure(w http.ResponseWriter, r *http.Request, f Fault) (serve bool) {
	if f.Delay > 0 {
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return false
		case <-s.closed:
			return false
		}
	}
	switch {
	case f.Drop:
		dropConnection(w)
		return false
	case f.Status == http.StatusTooManyRequests:
		s.countError(tooManyRequests(f.RetryAfter))
		writeError(w, tooManyRequests(f.RetryAfter))
		return false
	case f.Status != 0:
		writeError(w, &apiError{code: f.Status, description: http.StatusText(f.Status)})
		return false
	}
	return true
}

// dropConnection closes the TCP connection without an answer, as a crashed
// proxy would.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http aborts the connection quietly
	}
	_ = conn.Close()
}
