package revision

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits of a Schedule expression, so that parsing and evaluating one is
// bounded whatever the input.
const (
	MaxScheduleWindows = 64
	MaxScheduleLength  = 4096
	// MaxFloorLeadTime bounds zeroscale.dev/scale-floor-lead-time.
	MaxFloorLeadTime = 24 * time.Hour
)

// scheduleSyntax says in words what ParseSchedule accepts.
const scheduleSyntax = `windows "DAYS HH:MM-HH:MM ZONE = N" separated by ";" ` +
	`(DAYS: Mon…Sun, ranges such as Mon-Fri, comma-separated, or *; ZONE: an IANA time zone such as Europe/Berlin, or UTC; N ≥ 1)`

// Schedule is a minimum scale that follows the calendar: a list of
// weekly windows, each with its own time zone and floor, such as
// "Mon-Fri 08:00-18:00 Europe/Berlin = 2; Sat 10:00-14:00 UTC = 1".
// The zero Schedule has no windows (its floor is always 0). Build one
// with ParseSchedule; a Schedule is immutable and safe to share.
type Schedule struct {
	windows []scheduleWindow
}

// scheduleWindow is one "DAYS HH:MM-HH:MM ZONE = N" window.
type scheduleWindow struct {
	days       [7]bool // indexed by time.Weekday: the days a window starts on
	start, end int     // minutes after midnight; end in (0, 1440]; end ≤ start: ends the next day
	loc        *time.Location
	floor      int
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseSchedule parses a floor schedule: one or more windows separated
// by ";", each "DAYS HH:MM-HH:MM ZONE = N":
//
//   - DAYS: day names (Mon, Tue, Wed, Thu, Fri, Sat, Sun, any case), ranges
//     of them (Mon-Fri; Fri-Mon wraps over the weekend), comma-separated,
//     or "*" for every day. A window belongs to the day it starts on.
//   - HH:MM-HH:MM: the wall-clock start (00:00–23:59) and end
//     (00:01–24:00) in ZONE; an end at or before the start means the
//     window ends the next day (22:00-06:00).
//   - ZONE: an IANA time zone name, as time.LoadLocation takes it (the
//     system's zoneinfo, or time/tzdata linked into the program), or UTC.
//     "Local" is refused: a revision must mean the same on every host.
//   - N: the floor, an integer in [1, 2147483647].
//
// Overlapping windows take the largest floor. At most MaxScheduleWindows
// windows and MaxScheduleLength bytes. The error names the window and
// the part of it that is wrong.
func ParseSchedule(expr string) (Schedule, error) {
	if len(expr) > MaxScheduleLength {
		return Schedule{}, fmt.Errorf("schedule is %d bytes long, at most %d", len(expr), MaxScheduleLength)
	}
	parts := strings.Split(expr, ";")
	if len(parts) > MaxScheduleWindows {
		return Schedule{}, fmt.Errorf("schedule has %d windows, at most %d", len(parts), MaxScheduleWindows)
	}
	var s Schedule
	for i, part := range parts {
		w, err := parseWindow(strings.TrimSpace(part))
		if err != nil {
			return Schedule{}, fmt.Errorf("window %d (%q): %w", i+1, strings.TrimSpace(part), err)
		}
		s.windows = append(s.windows, w)
	}
	return s, nil
}

func parseWindow(text string) (scheduleWindow, error) {
	var w scheduleWindow
	if text == "" {
		return w, fmt.Errorf(`empty: want "DAYS HH:MM-HH:MM ZONE = N"`)
	}
	left, right, ok := strings.Cut(text, "=")
	if !ok {
		return w, fmt.Errorf(`no "= N" floor: want "DAYS HH:MM-HH:MM ZONE = N"`)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(right), 10, 32)
	if err != nil || n < 1 {
		return w, fmt.Errorf("floor %q: want an integer in [1, 2147483647]", strings.TrimSpace(right))
	}
	w.floor = int(n)
	f := strings.Fields(left)
	if len(f) != 3 {
		return w, fmt.Errorf(`%q: want "DAYS HH:MM-HH:MM ZONE" before "=", got %d parts`, strings.TrimSpace(left), len(f))
	}
	if w.days, err = parseDays(f[0]); err != nil {
		return w, err
	}
	startText, endText, ok := strings.Cut(f[1], "-")
	if !ok {
		return w, fmt.Errorf("hours %q: want HH:MM-HH:MM", f[1])
	}
	if w.start, ok = parseClock(startText, false); !ok {
		return w, fmt.Errorf("start %q: want HH:MM in 00:00–23:59", startText)
	}
	if w.end, ok = parseClock(endText, true); !ok {
		return w, fmt.Errorf("end %q: want HH:MM in 00:00–24:00", endText)
	}
	if w.end == 0 {
		w.end = 24 * 60 // 00:00 as an end is midnight, the end of the day
	}
	if w.start == w.end {
		return w, fmt.Errorf("hours %q: start and end are the same time (a whole day is 00:00-24:00)", f[1])
	}
	if f[2] == "Local" {
		return w, fmt.Errorf("zone %q: want an IANA zone such as Europe/Berlin, or UTC (Local differs between hosts)", f[2])
	}
	if w.loc, err = time.LoadLocation(f[2]); err != nil {
		return w, fmt.Errorf("zone %q: want an IANA zone such as Europe/Berlin, or UTC: %w", f[2], err)
	}
	return w, nil
}

func parseDays(text string) ([7]bool, error) {
	var days [7]bool
	if text == "*" {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for item := range strings.SplitSeq(text, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, ok := parseDay(from)
		if !ok {
			return days, fmt.Errorf("day %q: want one of Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or *", from)
		}
		b := a
		if isRange {
			if b, ok = parseDay(to); !ok {
				return days, fmt.Errorf("day %q: want one of Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or *", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (int, bool) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n) {
			return i, true
		}
	}
	return 0, false
}

// parseClock parses HH:MM into minutes after midnight; 24:00 only when
// end.
func parseClock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[0] == '-' || s[3] == '+' || s[3] == '-' || m < 0 || m > 59 || h < 0 {
		return 0, false
	}
	if h == 24 && m == 0 && end {
		return 24 * 60, true
	}
	if h > 23 {
		return 0, false
	}
	return h*60 + m, true
}

// IsZero reports whether s has no windows.
func (s Schedule) IsZero() bool { return len(s.windows) == 0 }

// Max is the largest floor of any window (0 for the zero Schedule).
func (s Schedule) Max() int {
	m := 0
	for _, w := range s.windows {
		m = max(m, w.floor)
	}
	return m
}

// Floor is the schedule's minimum scale at t: the largest floor of the
// windows t falls in, 0 outside all of them. A window counts from lead
// before its start (pre-warming, so instances are ready when it opens)
// to its end. Start and end are wall-clock times in the window's zone
// on the day it starts: across a daylight-saving change a window keeps
// its wall-clock hours (a start in the skipped hour is read as
// time.Date normalizes it).
func (s Schedule) Floor(t time.Time, lead time.Duration) int {
	floor := 0
	for i := range s.windows {
		if w := &s.windows[i]; w.floor > floor && w.covers(t, lead) {
			floor = w.floor
		}
	}
	return floor
}

// covers reports whether t is within [start−lead, end) of an occurrence
// of w. Occurrences starting the day before t (overnight windows), on
// t's day and the day after (lead ≤ 24 h) are the only candidates.
func (w *scheduleWindow) covers(t time.Time, lead time.Duration) bool {
	local := t.In(w.loc)
	y, m, d := local.Date()
	for off := -1; off <= 1; off++ {
		day := time.Date(y, m, d+off, 12, 0, 0, 0, w.loc) // noon: never in a DST gap
		if !w.days[day.Weekday()] {
			continue
		}
		dy, dm, dd := day.Date()
		start := time.Date(dy, dm, dd, 0, w.start, 0, 0, w.loc)
		endDay := dd
		if w.end <= w.start {
			endDay++
		}
		end := time.Date(dy, dm, endDay, 0, w.end, 0, 0, w.loc)
		if !t.Before(start.Add(-lead)) && t.Before(end) {
			return true
		}
	}
	return false
}

// String renders s canonically: ParseSchedule(s.String()) equals s.
func (s Schedule) String() string {
	var b strings.Builder
	for i, w := range s.windows {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(w.daysString())
		fmt.Fprintf(&b, " %02d:%02d-%02d:%02d %s = %d", w.start/60, w.start%60, w.end/60, w.end%60, w.loc, w.floor)
	}
	return b.String()
}

// daysString renders the days as runs from Monday to Sunday: Mon-Fri,
// Sat,Sun; every day is "*".
func (w *scheduleWindow) daysString() string {
	order := [7]int{1, 2, 3, 4, 5, 6, 0}
	var runs []string
	for i := 0; i < 7; {
		if !w.days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && w.days[order[j+1]] {
			j++
		}
		switch {
		case j == i:
			runs = append(runs, dayNames[order[i]])
		default:
			runs = append(runs, dayNames[order[i]]+"-"+dayNames[order[j]])
		}
		i = j + 1
	}
	if len(runs) == 1 && runs[0] == "Mon-Sun" {
		return "*"
	}
	return strings.Join(runs, ",")
}
