package load

import (
	"context"
	"testing"
	"time"
)

// TestSmallLoadLosesNothing runs 4 edges against a cloud whose queue holds
// one request: overloaded replies are retried until every request is ok.
func TestSmallLoadLosesNothing(t *testing.T) {
	r, err := Run(context.Background(), Config{Edges: 4, Images: 25, Concurrency: 4, Queue: 1, Workers: 1, Delay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *r)
	if r.Requests != 100 || r.OK != 100 || r.Lost != 0 {
		t.Fatalf("requests %d, ok %d, lost %d (%s)", r.Requests, r.OK, r.Lost, r.FirstError)
	}
	if r.OverloadedReplies == 0 || r.Retries != r.OverloadedReplies {
		t.Fatalf("overloaded %d, retries %d: 16 in flight on a queue of 1 must be refused and retried", r.OverloadedReplies, r.Retries)
	}
}
