package main

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/scaleout"
	"github.com/splitstream/splitstream/bundle"
)

// TestMain lets the test binary act as the splitstream binary, so that
// bench scaleout can start cloud replicas from it.
func TestMain(m *testing.M) {
	if os.Getenv("SPLITSTREAM_TEST_AS_BINARY") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestBenchScaleout runs the scale-out proof small: two replicas (this test
// binary acting as splitstream) behind nginx, three edges, one replica
// drained or crashed and restarted: nothing lost or answered twice, and no
// error when it drains.
func TestBenchScaleout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cloud processes and nginx")
	}
	b, err := bundle.FirstSplit("../../" + bundle.ZooDir)
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("SPLITSTREAM_TEST_AS_BINARY", "1")
	for _, kill := range []string{"drain", "crash"} {
		t.Run(kill, func(t *testing.T) {
			c := scaleout.Config{Replicas: 2, Edges: 3, Duration: 6 * time.Second, Kill: kill, Bundle: b.Dir,
				Concurrency: 2, Images: 10, DrainDelay: time.Second, Engine: "native", Threads: 1}
			r, err := scaleout.Run(context.Background(), c, io.Discard)
			if errors.Is(err, scaleout.ErrNoNginx) {
				t.Skipf("needs nginx with the stream module (apt-get install nginx libnginx-mod-stream): %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", *r)
			if r.OK == 0 || r.Lost != 0 || r.Duplicates != 0 || r.OK+r.Errors+r.Lost != r.Requests {
				t.Errorf("requests %d: ok %d, lost %d, duplicates %d, errors %d (first: %s)", r.Requests, r.OK, r.Lost, r.Duplicates, r.Errors, r.FirstError)
			}
			if kill == "drain" && (r.Errors != 0 || r.GoingAway == 0) {
				t.Errorf("drain: %d errors (first: %s), %d connections closed going away", r.Errors, r.FirstError, r.GoingAway)
			}
			if r.DownS <= 0 || r.Connects <= int64(c.Edges) {
				t.Errorf("replica down %.1f s, %d connections for %d edges: the replica was not stopped under the run", r.DownS, r.Connects, c.Edges)
			}
		})
	}
}
