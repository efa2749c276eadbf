package link

import (
	"fmt"
	"time"
)

// Profile is a named link. docs/LINKS.md explains every figure and where it
// comes from.
type Profile struct {
	Name    string
	Summary string // one line for --help and reports
	Source  string // where the figures come from
	Link    Config
}

const (
	srcWPT     = "WebPageTest connectivity.ini.sample"
	srcFirefox = "Firefox DevTools throttling presets"
	srcITU     = "ITU-R M.2410 (IMT-2020 minimum requirements)"
	srcOurs    = "typical values chosen by us"
)

func sym(rate float64, oneWay time.Duration, queue int) Config {
	d := Direction{RateBps: rate, Delay: oneWay, QueueBytes: queue}
	return Config{Up: d, Down: d}
}

func asym(up, down float64, oneWay time.Duration, queue int) Config {
	c := sym(up, oneWay, queue)
	c.Down.RateBps = down
	return c
}

var profiles = []Profile{
	{"ideal", "no rate limit, delay or loss (loopback through the relay)", srcOurs, Config{}},
	{"lan", "gigabit Ethernet LAN: 1 Gbit/s each way, 0.1 ms one way", srcOurs + " (1000BASE-T rate)",
		sym(1e9, 100*time.Microsecond, 1<<20)},
	{"5g", "5G eMBB: 50 Mbit/s up, 100 Mbit/s down, 20 ms RTT", srcITU + " for rates and radio latency; core and transport delay " + srcOurs,
		asym(50e6, 100e6, 10*time.Millisecond, 1<<20)},
	{"wifi", "Wi-Fi: 15 Mbit/s up, 30 Mbit/s down, 2 ms RTT", srcFirefox + " (\"Wi-Fi\"); queue " + srcOurs,
		asym(15e6, 30e6, time.Millisecond, 256<<10)},
	{"lte", "LTE: 12 Mbit/s each way, 70 ms RTT", srcWPT + " (\"LTE\"); queue " + srcOurs,
		sym(12e6, 35*time.Millisecond, 256<<10)},
	{"4g", "4G: 9 Mbit/s each way, 170 ms RTT", srcWPT + " (\"4G\"); queue " + srcOurs,
		sym(9e6, 85*time.Millisecond, 256<<10)},
	{"3gfast", "fast 3G / slow 4G: 768 kbit/s up, 1.6 Mbit/s down, 150 ms RTT", srcWPT + " (\"3GFast\", also Lighthouse's default); queue " + srcOurs,
		asym(768e3, 1.6e6, 75*time.Millisecond, 64<<10)},
	{"3g", "3G: 768 kbit/s up, 1.6 Mbit/s down, 300 ms RTT", srcWPT + " (\"3G\"); queue " + srcOurs,
		asym(768e3, 1.6e6, 150*time.Millisecond, 64<<10)},
	{"3g-congested", "congested 3G/LTE cell: 400 kbit/s each way, 400 ms RTT, 1% loss, 10 ms jitter", srcWPT + " (\"3GSlow\") for rate and RTT; loss, jitter and queue " + srcOurs,
		func() Config {
			c := sym(400e3, 200*time.Millisecond, 32<<10)
			c.Up.Loss, c.Down.Loss = 0.01, 0.01
			c.Up.Jitter, c.Down.Jitter = 10*time.Millisecond, 10*time.Millisecond
			return c
		}()},
}

// Profiles returns the named links, fastest first.
func Profiles() []Profile { return append([]Profile(nil), profiles...) }

// LookupProfile returns the profile called name.
func LookupProfile(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, profileNames())
}

func profileNames() string {
	s := ""
	for i, p := range profiles {
		if i > 0 {
			s += ", "
		}
		s += p.Name
	}
	return s
}
