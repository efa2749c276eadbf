// Package netns runs the edge and the cloud of a bench in two network
// namespaces joined by a veth pair. The kernel's tbf qdisc on each end of
// the pair applies the link's rate and queue; a link.Relay inside the cloud
// namespace applies its delay, jitter and loss, and replays its capacity
// traces (link.Direction.Trace) with their queues. It needs Linux, root and
// iproute2 (ip, tc); Available says whether it can run here.
//
//	pair, err := netns.New(ctx, cfg)
//	defer pair.Close()
//	srv, err := pair.Cloud.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
//	relay, err := pair.Relay(ctx, srv.LocalAddr().String(), seed)
//	cli, err := pair.Edge.ListenUDP("udp4", nil)
//	// QUIC server on srv; QUIC client on cli, dialing relay.Addr()
//
// A socket keeps the namespace it was created in, so code that creates its
// sockets through Namespace.Do (or ListenUDP) uses them as usual afterwards,
// from any goroutine. The pair's addresses (EdgeIP, CloudIP) exist only
// inside its two namespaces, so nothing leaves them.
//
// Pairs are removed by Close; on SIGINT, SIGTERM or SIGHUP the package
// removes the live pairs and then passes the signal on (to the program's
// own handlers if it has any, else to the default action); and New first
// removes the namespaces left by processes that died without either
// (CleanupStale).
package netns

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/splitstream/splitstream/bench/link"
)

// Prefix starts the name of every namespace the package creates.
const Prefix = "ssbench-"

// The addresses of the two ends of the veth pair, inside the namespaces.
var (
	EdgeIP  = netip.MustParseAddr("10.200.0.1")
	CloudIP = netip.MustParseAddr("10.200.0.2")
)

// ErrUnavailable is wrapped by the errors of Available.
var ErrUnavailable = errors.New("namespace mode unavailable")

// Namespace is one of the two network namespaces of a Pair.
type Namespace struct {
	name string
}

// Name is the namespace's name, as `ip netns list` shows it.
func (n *Namespace) Name() string { return n.name }

// ListenUDP creates a UDP socket inside the namespace (see net.ListenUDP).
func (n *Namespace) ListenUDP(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() (err error) {
		c, err = net.ListenUDP(network, laddr)
		return err
	})
	return c, err
}

// Pair is an edge namespace and a cloud namespace joined by a shaped veth
// pair.
type Pair struct {
	Edge, Cloud *Namespace
	cfg         link.Config

	mu     sync.Mutex
	relays []*link.Relay
	closed bool
	err    error
}

// Config is the link the pair emulates.
func (p *Pair) Config() link.Config { return p.cfg }

// RelayConfig is the part of cfg left to the relay in namespace mode: the
// delays, jitter and loss, and the traces with their queues; the rates and
// queues of the other directions are tbf's. tbf cannot follow a trace
// faithfully (docs/LINKS.md), so the relay replays it, as in relay mode.
func RelayConfig(cfg link.Config) link.Config {
	strip := func(d link.Direction) link.Direction {
		if d.Trace == nil {
			d.RateBps, d.BurstBytes, d.QueueBytes, d.QueuePackets = 0, 0, 0, 0
		}
		return d
	}
	return link.Config{Up: strip(cfg.Up), Down: strip(cfg.Down)}
}
