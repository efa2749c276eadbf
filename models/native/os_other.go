//go:build !linux

package native

import (
	"runtime"
	"sync"
)

// osYield lets other goroutines run; the OS thread yield is Linux only.
func osYield() { runtime.Gosched() }

// parker is a one-token semaphore on which a team worker parks.
type parker struct {
	once sync.Once
	c    chan struct{}
}

func (p *parker) ch() chan struct{} {
	p.once.Do(func() { p.c = make(chan struct{}, 1) })
	return p.c
}

// park blocks until a token is there and takes it.
func (p *parker) park() { <-p.ch() }

// unpark leaves a token (at most one is kept).
func (p *parker) unpark() {
	select {
	case p.ch() <- struct{}{}:
	default:
	}
}
