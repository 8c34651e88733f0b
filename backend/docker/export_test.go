package docker

// Timings are an instance's start phases, for the tests that measure
// cold starts.
type Timings = startTimes

// Timings exposes the start phases of a revision's instances.
func (b *Backend) Timings(name string) []Timings { return b.timings(name) }
