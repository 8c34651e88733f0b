package revision

import (
	"cmp"
	"strconv"
	"strings"
)

// Annotation keys of the reserved instance's profile (IdleModeReserve).
// They are read only when zeroscale.dev/idle-mode is "reserve".
const (
	// ReservedCPUAnnotation is the reserved instance's CPU, a Kubernetes
	// quantity ("250m", "0.5", "1") in [10m, 256]: Docker's NanoCPUs,
	// Kubernetes' CPU request and limit. Unset: DefaultReservedCPUMillis.
	ReservedCPUAnnotation = ZeroscalePrefix + "reserved-cpu"
	// ReservedMemoryAnnotation is the reserved instance's memory limit,
	// a Kubernetes quantity ("128Mi", "1Gi", "500M") in [6Mi, 1Ti]:
	// Docker's Memory, Kubernetes' memory request and limit. Unset: the
	// standard instances' (Spec.Resources), none if they have none.
	ReservedMemoryAnnotation = ZeroscalePrefix + "reserved-memory"
	// ReservedNiceAnnotation is the reserved instance's nice value on
	// the process backend (setpriority on its process group), an integer
	// in [1, 19]: a higher value, a lower CPU priority. Unset:
	// DefaultReservedNice.
	ReservedNiceAnnotation = ZeroscalePrefix + "reserved-nice"
)

// Defaults and bounds of the reserved profile.
const (
	DefaultReservedCPUMillis = 250
	DefaultReservedNice      = 10
	minReservedCPUMillis     = 10      // Docker's smallest NanoCPUs
	maxReservedCPUMillis     = 256_000 // 256 CPUs
	minReservedMemory        = 6 << 20 // Docker's smallest memory limit
	maxReservedMemory        = 1 << 40
)

// ReservedProfile is the cheaper resource profile a revision's reserved
// instance runs with (IdleModeReserve): engines that implement
// backend.Reserver apply it to instances of kind reserved only.
type ReservedProfile struct {
	// CPUMillis is the CPU in thousandths of a CPU: Docker NanoCPUs,
	// Kubernetes CPU request and limit.
	CPUMillis int64
	// MemoryBytes is the memory limit: 0 means none (the app's own).
	MemoryBytes int64
	// Nice is the process backend's nice value for the instance's
	// process group, in [1, 19].
	Nice int
}

// Reserved returns the reserved instance's profile: the
// zeroscale.dev/reserved-* settings, defaults for those unset (memory:
// the standard instances' limit from res, none if unset).
func (s Scaling) Reserved(res Resources) ReservedProfile {
	p := ReservedProfile{CPUMillis: DefaultReservedCPUMillis, MemoryBytes: res.MemoryLimitBytes, Nice: DefaultReservedNice}
	if s.ReservedCPUMillis != nil {
		p.CPUMillis = *s.ReservedCPUMillis
	}
	if s.ReservedMemoryBytes != nil {
		p.MemoryBytes = *s.ReservedMemoryBytes
	}
	if s.ReservedNice != nil {
		p.Nice = *s.ReservedNice
	}
	return p
}

// reservedFields are the profile's rows of scalingFields.
func reservedFields() []scalingField {
	return []scalingField{
		ptrField(ReservedCPUAnnotation, "", `a CPU quantity in [10m, 256] ("250m", "0.5", "2")`, parseMilliCPU, formatMilliCPU,
			func(m int64) bool { return m >= minReservedCPUMillis && m <= maxReservedCPUMillis },
			func(s *Scaling) **int64 { return &s.ReservedCPUMillis }),
		ptrField(ReservedMemoryAnnotation, "", `a memory quantity in [6Mi, 1Ti] ("128Mi", "1Gi", "500M")`, parseBytes, formatBytes,
			func(b int64) bool { return b >= minReservedMemory && b <= maxReservedMemory },
			func(s *Scaling) **int64 { return &s.ReservedMemoryBytes }),
		ptrField(ReservedNiceAnnotation, "", "an integer in [1, 19]", strconv.Atoi, strconv.Itoa, validNice,
			func(s *Scaling) **int { return &s.ReservedNice }),
	}
}

func validNice(n int) bool { return n >= 1 && n <= 19 }

// quantitySuffixes are the Kubernetes quantity suffixes accepted, with
// their multipliers; "m" (milli) is CPU's.
var quantitySuffixes = []struct {
	s string
	f int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// parseQuantity reads a subset of Kubernetes' quantity syntax: a
// non-negative decimal ("0.5", "128", at most 6 decimals) times unit, as
// a whole number; with milli, an optional "m" suffix (CPU), else one of
// quantitySuffixes (memory).
func parseQuantity(v string, unit int64, milli bool) (int64, error) {
	num, mult := v, unit
	switch {
	case milli:
		if strings.HasSuffix(v, "m") {
			num, mult = strings.TrimSuffix(v, "m"), unit/1000
		}
	default:
		for _, q := range quantitySuffixes {
			if strings.HasSuffix(v, q.s) {
				num, mult = strings.TrimSuffix(v, q.s), unit*q.f
				break
			}
		}
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" && frac == "" || strings.ContainsAny(num, "+-eE") || len(frac) > 6 {
		return 0, strconv.ErrSyntax
	}
	w, err := strconv.ParseInt(cmp.Or(whole, "0"), 10, 64)
	if err != nil || w > (1<<62)/mult {
		return 0, strconv.ErrSyntax
	}
	n := w * mult
	if frac != "" {
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, strconv.ErrSyntax
		}
		den := int64(1)
		for range frac {
			den *= 10
		}
		if (f*mult)%den != 0 {
			return 0, strconv.ErrSyntax // not a whole number of the unit
		}
		n += f * mult / den
	}
	return n, nil
}

func parseMilliCPU(v string) (int64, error) { return parseQuantity(v, 1000, true) }
func parseBytes(v string) (int64, error)    { return parseQuantity(v, 1, false) }

func formatMilliCPU(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

func formatBytes(b int64) string {
	for i := 3; i >= 0; i-- {
		if q := quantitySuffixes[i]; b%q.f == 0 {
			return strconv.FormatInt(b/q.f, 10) + q.s
		}
	}
	return strconv.FormatInt(b, 10)
}
