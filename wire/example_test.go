package wire_test

import (
	"bytes"
	"fmt"

	"github.com/splitstream/splitstream/wire"
)

// A request is a 64-byte header and the payload; the reply names the
// request, its status, the cloud's stage timings and the results.
func Example() {
	var stream bytes.Buffer
	h := wire.Header{Codec: 1, Tasks: wire.Tasks(0).With(wire.Classify), Channels: 48, Height: 12, Width: 12, RequestID: 7}
	if err := wire.WriteRequest(&stream, h, []byte("rANS bytes")); err != nil {
		panic(err)
	}
	got, payload, err := wire.ReadRequest(&stream, 0)
	fmt.Println(got.RequestID, got.Tasks.List(), string(payload), err)

	reply := &wire.Reply{Status: wire.StatusOK, RequestID: got.RequestID,
		Results: []wire.Result{{Task: wire.Classify, Classes: []wire.Class{{Label: 3, Score: 0.5}}}}}
	if err := wire.WriteReply(&stream, reply); err != nil {
		panic(err)
	}
	r, err := wire.ReadReply(&stream)
	fmt.Println(r.RequestID, r.Status, r.Result(wire.Classify).Classes, err)
	// Output:
	// 7 [classify] rANS bytes <nil>
	// 7 ok [{3 0.5}] <nil>
}
