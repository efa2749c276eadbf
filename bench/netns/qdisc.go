package netns

import (
	"encoding/json"
	"fmt"
)

// QdiscStats are the counters of the tbf qdisc that shapes one direction.
type QdiscStats struct {
	Bytes      uint64 // bytes sent (as tbf counts them: Ethernet header excluded)
	Packets    uint64 // packets sent
	Drops      uint64 // packets dropped because the queue was full
	Overlimits uint64 // times a packet had to wait for tokens
	Backlog    uint64 // bytes queued now
}

// parseQdiscStats reads the output of `tc -s -j qdisc show dev DEV` and
// returns the counters of its tbf qdisc.
func parseQdiscStats(out []byte) (QdiscStats, error) {
	var qdiscs []struct {
		Kind       string `json:"kind"`
		Bytes      uint64 `json:"bytes"`
		Packets    uint64 `json:"packets"`
		Drops      uint64 `json:"drops"`
		Overlimits uint64 `json:"overlimits"`
		Backlog    uint64 `json:"backlog"`
	}
	if err := json.Unmarshal(out, &qdiscs); err != nil {
		return QdiscStats{}, fmt.Errorf("tc qdisc statistics: %w", err)
	}
	for _, q := range qdiscs {
		if q.Kind == "tbf" {
			return QdiscStats{q.Bytes, q.Packets, q.Drops, q.Overlimits, q.Backlog}, nil
		}
	}
	return QdiscStats{}, fmt.Errorf("tc qdisc statistics: no tbf qdisc among %d", len(qdiscs))
}
