package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/wire"
)

// StreamOptions configure Stream. The zero value streams the whole test set
// with 4 requests in flight on the native engine.
type StreamOptions struct {
	Engine Engine
	// Concurrency is the edge's requests in flight (default 4).
	Concurrency int
	// Limit sends only the first Limit test images (0: all).
	Limit int
}

// StreamResult is what Stream measured.
type StreamResult struct {
	Scores
	Summary  edge.Summary
	Elapsed  time.Duration
	Connects int64 // QUIC connections the edge opened
}

// Stream starts a cloud server for b on loopback and an edge agent that
// sends b's test images to it over QUIC, scores the replies and summarises
// the latencies. Any failed image is an error.
func Stream(ctx context.Context, b *bundle.Bundle, o StreamOptions) (*StreamResult, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	sc, err := NewScorer(b, nil)
	if err != nil {
		return nil, err
	}
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine.Kind, EngineOptions: o.Engine.Options})
	if err != nil {
		return nil, err
	}
	defer model.Close()
	srv, err := Loopback(ctx, []*cloud.Model{model}, cloud.Options{Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()

	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: o.Engine.Kind, EngineOptions: o.Engine.Options})
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	client, err := edge.NewClient(srv.Addr, edge.ClientOptions{TLS: srv.ClientTLS, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Concurrency: o.Concurrency, Tasks: sc.Tasks()})
	if err != nil {
		return nil, err
	}
	paths := sc.Paths(o.Limit)
	items := make(chan edge.Item, o.Concurrency)
	go edge.Read(ctx, paths, nil, items)
	res := &StreamResult{}
	var firstErr error
	records := make([]*edge.Record, len(paths))
	start := time.Now()
	agent.Run(ctx, items, func(r edge.Record) {
		res.Summary.Add(r)
		records[r.Index] = &r
		if r.Status != wire.StatusOK.String() && firstErr == nil {
			firstErr = fmt.Errorf("%s: %s: %s", r.Image, r.Status, r.Error)
		}
	})
	res.Elapsed = time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	for i, r := range records {
		if r == nil {
			return nil, fmt.Errorf("no result for %s", paths[i])
		}
		sc.AddBytes(r.Bytes - wire.HeaderSize) // payload only, as Evaluate and the manifest count
		if err := sc.Add(i, r.Reply.Results, nil); err != nil {
			return nil, err
		}
	}
	res.Scores = sc.Result()
	res.Connects = client.Stats().Connects
	return res, nil
}
