package e2e

import (
	"context"
	"testing"

	"github.com/splitstream/splitstream/edge"
)

// TestClientTransportStats: after a few answered requests the client
// reports its live connection's QUIC statistics (what the adaptive policy
// reads its round trip from); before any connection it reports none.
func TestClientTransportStats(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	client, err := edge.NewClient(f.addr, edge.ClientOptions{TLS: f.client, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, ok := client.Transport(); ok {
		t.Fatal("Transport reported a connection before any request")
	}
	agent, err := edge.NewAgent(f.newEncoder(t), client, edge.AgentOptions{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	items := make(chan edge.Item, 5)
	for i := range 5 {
		items <- edge.Item{Index: i, Name: "img", Data: pngImage(t, uint64(i))}
	}
	close(items)
	if err := agent.Run(context.Background(), items, func(r edge.Record) {
		if r.Error != "" {
			t.Errorf("record %d: %s", r.Index, r.Error)
		}
	}); err != nil {
		t.Fatal(err)
	}
	st, ok := client.Transport()
	if !ok {
		t.Fatal("no live connection after the run")
	}
	t.Logf("%+v", st)
	if st.SmoothedRTT <= 0 || st.MinRTT <= 0 || st.BytesSent == 0 || st.CongestionWindow == 0 {
		t.Errorf("statistics not filled in: %+v", st)
	}
}
