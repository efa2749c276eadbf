package link_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/splitstream/splitstream/bench/link"
)

func ExampleParse() {
	cfg, err := link.Parse("3g,up.loss=2%")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.RTT(), cfg.Up.RateBps, cfg.Up.Loss)
	fmt.Println(cfg)
	// Output:
	// 300ms 768000 0.02
	// up.rate=768000,up.delay=150ms,up.loss=0.02,up.queue=65536,down.rate=1.6e+06,down.delay=150ms,down.queue=65536
}

func ExampleNewRelay() {
	// The cloud side: here a plain UDP socket.
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()

	cfg, err := link.Parse("rate=5Mbit,delay=10ms")
	if err != nil {
		log.Fatal(err)
	}
	relay, err := link.NewRelay(context.Background(), "127.0.0.1:0", server.LocalAddr().String(), cfg, 1)
	if err != nil {
		log.Fatal(err)
	}
	defer relay.Close()

	// The edge side sends to the relay instead of the server.
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	start := time.Now()
	if _, err := client.WriteTo([]byte("hello"), relay.Addr()); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := server.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, delayed at least 10ms: %v\n", buf[:n], time.Since(start) >= 10*time.Millisecond)
	fmt.Println("datagrams up:", relay.Stats().Up.Received)
	// Output:
	// hello, delayed at least 10ms: true
	// datagrams up: 1
}
