package lease

import "time"

// Clock supplies the local monotonic time used for every expiry decision
// (expiry is a local observation, never wall clock; docs/architecture.md
// "The lease table"). time.Now
// carries a monotonic reading, so Sub on its values is monotonic.
type Clock interface {
	Now() time.Time
}

// SystemClock is the Clock of a running daemon: time.Now.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// observation is this worker's view of one lease's counter (Java
// Lease.lastCounterIncrementNanos).
type observation struct {
	counter int64
	// at is the local time the current counter value was first seen; zero
	// means "infinitely old" (an unowned lease on first sight).
	at time.Time
}

func (o observation) expired(now time.Time, failover time.Duration) bool {
	return o.at.IsZero() || now.Sub(o.at) > failover
}

func (o observation) olderThan(now time.Time, d time.Duration) bool {
	return o.at.IsZero() || now.Sub(o.at) > d
}

// observe updates the observation map with a scan taken at scanTime and
// forgets keys no longer in the table.
func observe(obs map[string]observation, leases []Lease, scanTime time.Time) {
	seen := make(map[string]bool, len(leases))
	for _, l := range leases {
		seen[l.Key] = true
		old, ok := obs[l.Key]
		switch {
		case !ok && l.Owner == "":
			obs[l.Key] = observation{counter: l.Counter}
		case !ok || old.counter != l.Counter:
			obs[l.Key] = observation{counter: l.Counter, at: scanTime}
		}
	}
	for k := range obs {
		if !seen[k] {
			delete(obs, k)
		}
	}
}
