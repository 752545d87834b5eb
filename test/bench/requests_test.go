package bench

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// requestCounter counts the operator's API requests by verb and resource,
// so the benchmark can say what teleop costs the API server per app.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (rc *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if req.Method != http.MethodGet { // reads are the informers' lists and watches
			rc.mu.Lock()
			rc.counts[req.Method+" "+resourceOf(req.URL.Path)]++
			if err == nil && resp.StatusCode == http.StatusConflict {
				rc.counts["409 conflicts among them"]++
			}
			rc.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// namespacedPath matches .../namespaces/<ns>/<resource>[/<name>[/<subresource>]].
var namespacedPath = regexp.MustCompile(`/namespaces/[^/]+/([^/]+)(?:/[^/]+(/[^/]+)?)?$`)

func resourceOf(path string) string {
	if m := namespacedPath.FindStringSubmatch(path); m != nil {
		return m[1] + m[2]
	}
	return path
}

// writesLinePrefix starts the line the operator prints on exit.
const writesLinePrefix = "api writes: "

// print writes the total and the breakdown as one line.
func (rc *requestCounter) print() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	total := 0
	var parts []string
	for k, n := range rc.counts {
		if !strings.HasPrefix(k, "409") {
			total += n
		}
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	fmt.Fprintf(os.Stderr, "%s%d (%s)\n", writesLinePrefix, total, strings.Join(parts, ", "))
}

// parseWrites finds the operator's exit line in its log.
func parseWrites(log string) (total int, line string, err error) {
	for l := range strings.Lines(log) {
		if rest, ok := strings.CutPrefix(l, writesLinePrefix); ok {
			total, err = strconv.Atoi(strings.Fields(rest)[0])
			return total, strings.TrimSpace(l), err
		}
	}
	return 0, "", fmt.Errorf("no %q line in the operator log", writesLinePrefix)
}
