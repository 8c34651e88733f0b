package aggregation

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func newLinear(t *testing.T, w time.Duration) *Linear {
	t.Helper()
	l, err := NewLinear(w)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLinearQuirks(t *testing.T) {
	type rec struct {
		at int
		v  float64
	}
	tests := []struct {
		name   string
		window time.Duration
		recs   []rec
		readAt int
		want   float64
	}{
		{"empty", 5 * time.Second, nil, 0, 0},
		{"first write starts the range", 60 * time.Second, []rec{{0, 12}}, 0, 12},
		{"samples in one second add up", 60 * time.Second, []rec{{3, 1.5}, {3, 2.5}, {3, 1}}, 3, 5},
		{"trailing seconds left out", 5 * time.Second, []rec{{0, 2}, {1, 4}, {2, 6}, {3, 8}, {4, 10}}, 6, 8},
		{"trailing seconds left out, fresh window", 60 * time.Second, []rec{{0, 12}}, 30, 12},
		{"gaps between writes are zeros", 60 * time.Second, []rec{{0, 10}, {2, 10}}, 2, 20.0 / 3},
		{"full ring drops the oldest second", 5 * time.Second, []rec{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 6}}, 5, 10.0 / 5},
		{"full window without writes reads 0", 5 * time.Second, []rec{{0, 10}}, 5, 0},
		{"just under a window still reads the data", 5 * time.Second, []rec{{0, 10}}, 4, 10},
		{"next write after a silent window restarts it", 5 * time.Second, []rec{{0, 10}, {5, 3}}, 5, 3},
		{"write older than the window ignored", 5 * time.Second, []rec{{10, 5}, {5, 100}}, 10, 5},
		{"late write within the window accepted", 5 * time.Second, []rec{{10, 5}, {6, 5}}, 10, 2},
		{"truncated to 6 digits", 60 * time.Second, []rec{{0, 1}, {2, 0}}, 2, 0.333333},
		{"read in the past uses the whole range", 5 * time.Second, []rec{{0, 2}, {1, 4}}, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLinear(t, tc.window)
			for _, r := range tc.recs {
				l.Record(sec(r.at), r.v)
			}
			if got := l.Average(sec(tc.readAt)); math.Abs(got-tc.want) > 1e-6 {
				t.Errorf("Average = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLinearSubsecondTimesShareABucket(t *testing.T) {
	l := newLinear(t, 5*time.Second)
	l.Record(sec(0).Add(100*time.Millisecond), 1)
	l.Record(sec(0).Add(900*time.Millisecond), 2)
	if got := l.Average(sec(0).Add(999 * time.Millisecond)); got != 3 {
		t.Fatalf("Average = %v, want 3", got)
	}
}

func TestLinearIsEmpty(t *testing.T) {
	l := newLinear(t, 5*time.Second)
	if !l.IsEmpty(sec(0)) {
		t.Fatal("new window not empty")
	}
	l.Record(sec(0), 0)
	if l.IsEmpty(sec(5)) {
		t.Fatal("empty exactly one window after a write; Knative says not yet")
	}
	if !l.IsEmpty(sec(6)) {
		t.Fatal("not empty more than a window after the last write")
	}
}

func TestLinearLongRunKeepsTotalExact(t *testing.T) {
	l := newLinear(t, 6*time.Second)
	for i := range 1000 {
		l.Record(sec(i), float64(i%7))
		if i%13 == 0 { // a gap
			continue
		}
	}
	// Last 6 seconds: 994..999 → i%7.
	var want float64
	for i := 994; i < 1000; i++ {
		want += float64(i % 7)
	}
	if got := l.Average(sec(999)); math.Abs(got-want/6) > 1e-6 {
		t.Fatalf("Average = %v, want %v", got, want/6)
	}
}

func TestLinearResize(t *testing.T) {
	l := newLinear(t, 5*time.Second)
	for i := range 5 {
		l.Record(sec(i), float64(i+1)) // 1..5
	}
	if err := l.Resize(3*time.Second, sec(4)); err != nil {
		t.Fatal(err)
	}
	if got := l.Average(sec(4)); got != 4 { // (3+4+5)/3
		t.Fatalf("after shrink Average = %v, want 4", got)
	}
	if err := l.Resize(10*time.Second, sec(4)); err != nil {
		t.Fatal(err)
	}
	// Growing keeps the 3 buckets and counts from the oldest kept one.
	if got := l.Average(sec(4)); got != 4 {
		t.Fatalf("after grow Average = %v, want 4", got)
	}
	if err := l.Resize(0, sec(4)); err == nil {
		t.Fatal("Resize(0) accepted")
	}
}

func TestNewWindowRejectsBadLength(t *testing.T) {
	for _, w := range []time.Duration{0, -time.Second, 999 * time.Millisecond, MaxWindow + time.Second} {
		if _, err := NewLinear(w); err == nil {
			t.Errorf("NewLinear(%v) accepted", w)
		}
		if _, err := NewWeightedExponential(w); err == nil {
			t.Errorf("NewWeightedExponential(%v) accepted", w)
		}
	}
}

func TestWeightedSmoothing(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		want   float64
	}{
		{3 * time.Second, 0.9536}, {5 * time.Second, 0.8415}, {6 * time.Second, 0.7846},
		{10 * time.Second, 0.6019}, {40 * time.Second, 0.2057}, {41 * time.Second, 0.2012},
		{42 * time.Second, 0.2}, {60 * time.Second, 0.2},
	} {
		w, err := NewWeightedExponential(tc.window)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Smoothing(); math.Abs(got-tc.want) > 5e-5 {
			t.Errorf("m(%v) = %v, want %v", tc.window, got, tc.want)
		}
	}
}

func TestWeightedAverage(t *testing.T) {
	w, err := NewWeightedExponential(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := w.Smoothing()
	for i, v := range []float64{10, 10, 5, 5} { // newest last
		w.Record(sec(i), v)
	}
	want := 5*m + 5*m*(1-m) + 10*m*math.Pow(1-m, 2) + 10*m*math.Pow(1-m, 3)
	if got := w.Average(sec(3)); math.Abs(got-want) > 1e-9 {
		t.Fatalf("Average = %v, want %v", got, want)
	}
	// Two silent seconds decay as zeros.
	want2 := 5*m*math.Pow(1-m, 2) + 5*m*math.Pow(1-m, 3) + 10*m*math.Pow(1-m, 4)
	if got := w.Average(sec(5)); math.Abs(got-want2) > 1e-9 {
		t.Fatalf("Average two seconds later = %v, want %v", got, want2)
	}
	if got := w.Average(sec(9)); got != 0 {
		t.Fatalf("Average after the window = %v, want 0", got)
	}
	if err := w.Resize(10*time.Second, sec(3)); err != nil || math.Abs(w.Smoothing()-0.6019) > 5e-5 {
		t.Fatalf("Resize: err %v, m %v", err, w.Smoothing())
	}
}

func TestMax(t *testing.T) {
	if _, err := NewMax(time.Second, 2*time.Second); err == nil {
		t.Fatal("window shorter than granularity accepted")
	}
	if _, err := NewMax(10*time.Second, 1500*time.Millisecond); err == nil {
		t.Fatal("fractional granularity accepted")
	}
	m, err := NewMax(10*time.Second, 2*time.Second) // 5 buckets
	if err != nil {
		t.Fatal(err)
	}
	if m.Current() != 0 {
		t.Fatal("empty window not 0")
	}
	steps := []struct {
		at, v, want int
	}{
		{0, 5, 5},
		{2, 3, 5},
		{4, 8, 8},
		{4, 1, 8},  // same bucket keeps the larger
		{6, 2, 8},  // 8 recorded at 4 lives until 4+10
		{12, 2, 8}, // index 6 - index 2 = 4 < 5: still in
		{14, 2, 2}, // 8 gone exactly 10 s after it was recorded
		{16, 7, 7},
		{10, 1, 7}, // a late value joins the newest bucket
		{26, 0, 0},
	}
	for _, s := range steps {
		m.Record(sec(s.at), s.v)
		if got := m.Current(); got != s.want {
			t.Fatalf("after Record(t%d, %d): Current = %d, want %d", s.at, s.v, got, s.want)
		}
	}
}

// A NaN or infinite value is ignored: it would poison the running total
// (and with it every later average) for good.
func TestNonFiniteValuesIgnored(t *testing.T) {
	l := newLinear(t, 10*time.Second)
	w, err := NewWeightedExponential(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		l.Record(sec(0), v)
		w.Record(sec(0), v)
	}
	if !l.IsEmpty(sec(0)) || !w.IsEmpty(sec(0)) {
		t.Fatal("a non-finite value was recorded")
	}
	l.Record(sec(1), 4)
	w.Record(sec(1), 4)
	l.Record(sec(2), math.NaN())
	if got := l.Average(sec(2)); got != 4 {
		t.Errorf("Linear average = %v, want 4", got)
	}
	if got := w.Average(sec(1)); math.IsNaN(got) || got <= 0 {
		t.Errorf("WeightedExponential average = %v, want > 0", got)
	}
}
