package cloud

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// LoadTicketKeys reads TLS session-ticket keys from a file: one key a line,
// 64 hex digits (32 bytes); blank lines and lines starting with # are
// skipped. The first key encrypts new tickets; every key decrypts. Replicas
// and restarts that load the same file resume each other's sessions, with
// 0-RTT. To rotate, put a new key first, keep the old one second for a
// ticket lifetime (7 days at most), and restart the replicas one at a time.
func LoadTicketKeys(path string) ([][32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ticket keys: %w", err)
	}
	return ParseTicketKeys(data)
}

// ParseTicketKeys parses the contents of a ticket-key file (see
// LoadTicketKeys).
func ParseTicketKeys(data []byte) ([][32]byte, error) {
	var keys [][32]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var k [32]byte
		if len(line) != 64 {
			return nil, fmt.Errorf("ticket keys: line %d: %d characters, want 64 hex digits", n, len(line))
		}
		if _, err := hex.Decode(k[:], []byte(line)); err != nil {
			return nil, fmt.Errorf("ticket keys: line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ticket keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("ticket keys: no key")
	}
	return keys, nil
}
