package bot_test

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkAckUnderFlood measures the acknowledgement latency of genuine
// slash commands and clicks in HTTP mode, first on a quiet bot and then
// while 10 goroutines (2 per kind) flood it with unsigned, forged, stale, oversized and
// slow requests, and reports both side by side (p50 and p99, in ms) with
// the flood's rate of bad requests.
//
//	go test ./bot -run '^$' -bench AckUnderFlood -benchtime 300x
func BenchmarkAckUnderFlood(b *testing.B) {
	h, _, card, stale := floodSetup(b)
	measure := func() []time.Duration {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			r, _ := goodRequest(b, h, stale, i)
			lat = append(lat, r.Latency)
		}
		slices.Sort(lat)
		return lat
	}
	p := func(lat []time.Duration, q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
	}

	b.ResetTimer()
	quiet := measure()

	f := newFlood(h, card)
	stop := make(chan struct{})
	wait := f.run(b, 2, stop)
	waitUntil(b, "the flood under way", func() bool {
		for _, k := range floodKinds {
			if f.res.count(k) < 2 {
				return false
			}
		}
		return true
	})
	before, start := floodTotal(f), time.Now()
	flooded := measure()
	rate := float64(floodTotal(f)-before) / time.Since(start).Seconds()
	close(stop)
	wait()
	b.StopTimer()

	b.ReportMetric(p(quiet, 0.50), "quiet-p50-ms")
	b.ReportMetric(p(quiet, 0.99), "quiet-p99-ms")
	b.ReportMetric(p(flooded, 0.50), "flood-p50-ms")
	b.ReportMetric(p(flooded, 0.99), "flood-p99-ms")
	b.ReportMetric(rate, "bad-req/s")
	b.ReportMetric(0, "ns/op")
	h.stop()
}

func floodTotal(f *flood) int {
	n := 0
	for _, k := range floodKinds {
		n += f.res.count(k)
	}
	return n
}
