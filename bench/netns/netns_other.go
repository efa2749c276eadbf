//go:build !linux

package netns

import (
	"context"
	"fmt"
	"runtime"

	"github.com/splitstream/splitstream/bench/link"
)

// Available reports that network namespaces are Linux only.
func Available() error {
	return fmt.Errorf("%w: network namespaces need Linux, not %s", ErrUnavailable, runtime.GOOS)
}

// Do fails: there are no namespaces here.
func (n *Namespace) Do(fn func() error) error { return Available() }

// New fails: there are no namespaces here.
func New(ctx context.Context, cfg link.Config) (*Pair, error) { return nil, Available() }

// Relay fails: there are no namespaces here.
func (p *Pair) Relay(ctx context.Context, target string, seed uint64) (*link.Relay, error) {
	return nil, Available()
}

// Close does nothing: no pair can exist here.
func (p *Pair) Close() error { return nil }

// CleanupStale does nothing: there are no namespaces here.
func CleanupStale(ctx context.Context) error { return nil }

// QdiscStats fails: there are no namespaces here.
func (p *Pair) QdiscStats(ctx context.Context) (up, down QdiscStats, err error) {
	return QdiscStats{}, QdiscStats{}, Available()
}
