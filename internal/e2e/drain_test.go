package e2e

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/splitstream/splitstream/cloud"
)

// drainObservation is what TestDrainUnderLoad sees of the draining server.
type drainObservation struct {
	notReady     time.Duration // from the stop to /readyz failing
	runsAtStop   int64         // the server's graph runs when told to stop
	runsInDelay  int64         // ... and most of the drain delay later
	readyInDelay int           // /readyz's status then
	err          error
}

func readyz(url string) (int, error) {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady waits for /readyz to answer 200: the server marks itself
// ready once Serve has bound its listener, which the goroutine that
// started it may not have reached yet.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := readyz(url)
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz before the drain: %d %v", code, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDrainUnderLoad drains a server (SIGTERM's path: its context ends)
// while an edge given two servers sends it a steady stream: /readyz fails
// at once, the server keeps serving through its drain delay, then closes
// the connection with GoingAway once the requests in flight are answered;
// the edge reconnects to the second server, and every image is answered
// ok exactly once.
func TestDrainUnderLoad(t *testing.T) {
	const delay = 600 * time.Millisecond
	f := newFixture(t, fixtureOptions{delay: 2 * time.Millisecond})
	a := f.replica(t, "127.0.0.1", cloud.Options{DrainDelay: delay})
	b := f.replica(t, "127.0.0.2", cloud.Options{})
	admin := httptest.NewServer(a.server.Admin())
	defer admin.Close()
	waitReady(t, admin.URL)
	seen := make(chan drainObservation, 1)
	st := f.stream(t, a.addr+","+b.addr, 400, 80, func() {
		var o drainObservation
		o.runsAtStop = a.engines.Runs.Load()
		start := time.Now()
		a.stop()
		for {
			code, err := readyz(admin.URL)
			if o.err = err; err != nil || code == http.StatusServiceUnavailable {
				break
			}
			time.Sleep(time.Millisecond)
		}
		o.notReady = time.Since(start)
		time.Sleep(start.Add(delay * 3 / 4).Sub(time.Now()))
		o.runsInDelay = a.engines.Runs.Load()
		o.readyInDelay, _ = readyz(admin.URL)
		seen <- o
	})
	o := <-seen
	<-a.done
	t.Logf("client %+v; /readyz failed %v after the stop; graph runs on the draining server: %d at the stop, %d three quarters into the delay, %d in all; on the second: %d",
		st, o.notReady, o.runsAtStop, o.runsInDelay, a.engines.Runs.Load(), b.engines.Runs.Load())
	if o.err != nil {
		t.Fatalf("/readyz: %v", o.err)
	}
	if o.notReady > delay/4 {
		t.Errorf("/readyz failed %v after the stop, not at once", o.notReady)
	}
	if o.readyInDelay != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d during the drain delay", o.readyInDelay)
	}
	if o.runsInDelay <= o.runsAtStop {
		t.Errorf("the draining server ran no graph during its drain delay (%d runs at the stop, %d later)", o.runsAtStop, o.runsInDelay)
	}
	if st.GoingAway == 0 {
		t.Errorf("client %+v: the draining server did not close the connection with GoingAway", st)
	}
	if b.engines.Runs.Load() == 0 {
		t.Error("the edge did not move to the second server")
	}
}
