package revision

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func at(t *testing.T, zone, wall string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	tm, err := time.ParseInLocation("2006-01-02 15:04", wall, loc)
	require.NoError(t, err)
	return tm
}

func TestScheduleFloor(t *testing.T) {
	s := mustSchedule("Mon-Fri 08:00-18:00 Europe/Berlin = 2; Sat 10:00-14:00 UTC = 1; Fri 12:00-13:00 Europe/Berlin = 5")
	// 2026-12-07 is a Monday.
	tests := []struct {
		zone, wall string
		lead       time.Duration
		want       int
	}{
		{"Europe/Berlin", "2026-12-07 07:59", 0, 0},
		{"Europe/Berlin", "2026-12-07 08:00", 0, 2},
		{"UTC", "2026-12-07 07:00", 0, 2}, // 08:00 in Berlin (CET, UTC+1)
		{"Europe/Berlin", "2026-12-07 17:59", 0, 2},
		{"Europe/Berlin", "2026-12-07 18:00", 0, 0}, // the end is exclusive
		{"Europe/Berlin", "2026-12-07 07:45", 15 * time.Minute, 2},
		{"Europe/Berlin", "2026-12-07 07:44", 15 * time.Minute, 0},
		{"Europe/Berlin", "2026-12-11 12:30", 0, 5}, // Friday: the larger floor wins
		{"Europe/Berlin", "2026-12-12 09:00", 0, 0}, // Saturday in Berlin, before 10:00 UTC
		{"UTC", "2026-12-12 10:00", 0, 1},
		{"UTC", "2026-12-13 10:00", 0, 0}, // Sunday
		// Pre-warming reaches over midnight into Monday's window: Sunday 23:30 with 9 h lead.
		{"Europe/Berlin", "2026-12-06 23:30", 9 * time.Hour, 2},
		// Summer time: 08:00 Berlin is 06:00 UTC.
		{"UTC", "2026-07-06 06:00", 0, 2},
		{"UTC", "2026-07-06 05:59", 0, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, s.Floor(at(t, tt.zone, tt.wall), tt.lead), "%s %s lead %v", tt.wall, tt.zone, tt.lead)
	}
	assert.Equal(t, 5, s.Max())
	assert.Equal(t, 0, Schedule{}.Floor(time.Now(), time.Hour))
}

func TestScheduleOvernightAndWrap(t *testing.T) {
	s := mustSchedule("Fri-Mon 22:00-06:00 UTC = 3")
	assert.Equal(t, "Mon,Fri-Sun 22:00-06:00 UTC = 3", s.String())
	// 2026-12-07 is a Monday, 12-10 a Thursday, 12-11 a Friday.
	assert.Equal(t, 3, s.Floor(at(t, "UTC", "2026-12-08 05:59"), 0), "Monday's window runs into Tuesday")
	assert.Equal(t, 0, s.Floor(at(t, "UTC", "2026-12-08 06:00"), 0))
	assert.Equal(t, 0, s.Floor(at(t, "UTC", "2026-12-10 23:00"), 0), "no window starts on Thursday")
	assert.Equal(t, 0, s.Floor(at(t, "UTC", "2026-12-11 05:00"), 0), "Friday's window starts at 22:00")
	assert.Equal(t, 3, s.Floor(at(t, "UTC", "2026-12-11 22:00"), 0))
	assert.Equal(t, 3, s.Floor(at(t, "UTC", "2026-12-12 03:00"), 0))

	all := mustSchedule("* 00:00-24:00 UTC = 1")
	assert.Equal(t, "* 00:00-24:00 UTC = 1", all.String())
	assert.Equal(t, 1, all.Floor(at(t, "UTC", "2026-12-09 23:59"), 0))
	midnight := mustSchedule("sat 20:00-00:00 UTC = 1")
	assert.Equal(t, "Sat 20:00-24:00 UTC = 1", midnight.String())
}

func TestScheduleDST(t *testing.T) {
	// Europe/Berlin springs forward on 2026-03-29 at 02:00 to 03:00: a
	// window keeps its wall-clock hours on both sides of the change.
	s := mustSchedule("Sun 01:00-04:00 Europe/Berlin = 1")
	assert.Equal(t, 1, s.Floor(at(t, "UTC", "2026-03-29 00:00"), 0), "01:00 CET")
	assert.Equal(t, 1, s.Floor(at(t, "UTC", "2026-03-29 01:59"), 0), "03:59 CEST")
	assert.Equal(t, 0, s.Floor(at(t, "UTC", "2026-03-29 02:00"), 0), "04:00 CEST")
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ expr, part string }{
		{"", "window 1"},
		{"Mon-Fri 08:00-18:00 Europe/Berlin", `no "= N" floor`},
		{"Mon-Fri 08:00-18:00 Europe/Berlin = 0", `floor "0"`},
		{"Mon-Fri 08:00-18:00 Europe/Berlin = two", `floor "two"`},
		{"Mon-Fry 08:00-18:00 UTC = 1", `day "Fry"`},
		{"Mon-Fri 8:00-18:00 UTC = 1", `start "8:00"`},
		{"Mon-Fri 08:00-25:00 UTC = 1", `end "25:00"`},
		{"Mon-Fri 24:00-23:00 UTC = 1", `start "24:00"`},
		{"Mon-Fri 08:60-18:00 UTC = 1", `start "08:60"`},
		{"Mon-Fri 08:00 UTC = 1", `hours "08:00"`},
		{"Mon-Fri 08:00-08:00 UTC = 1", "the same time"},
		{"Mon-Fri 08:00-18:00 Mars/Olympus = 1", `zone "Mars/Olympus"`},
		{"Mon-Fri 08:00-18:00 Local = 1", `zone "Local"`},
		{"08:00-18:00 UTC = 1", "got 2 parts"},
		{"Mon 08:00-18:00 UTC = 1; Tue 08:00-18:00 UTC", `window 2 ("Tue 08:00-18:00 UTC")`},
		{"Mon 08:00-18:00 UTC = 1;", "window 2"},
		{strings.Repeat("Mon 08:00-09:00 UTC = 1;", 65), "at most 64"},
	}
	for _, tt := range tests {
		_, err := ParseSchedule(tt.expr)
		require.Error(t, err, tt.expr)
		assert.Contains(t, err.Error(), tt.part, tt.expr)
	}
}

func TestFloorScheduleAnnotation(t *testing.T) {
	s, err := ParseAnnotations(map[string]string{
		FloorScheduleAnnotation: "mon-fri 08:00-18:00 Europe/Berlin=2",
		FloorLeadTimeAnnotation: "5m",
	})
	require.NoError(t, err)
	require.NotNil(t, s.FloorSchedule)
	assert.Equal(t, "Mon-Fri 08:00-18:00 Europe/Berlin = 2", s.FloorSchedule.String())
	assert.Equal(t, 5*time.Minute, *s.FloorLeadTime)

	_, err = ParseAnnotations(map[string]string{FloorScheduleAnnotation: "Mon-Fri 08:00-18:00 Europe/Berlni = 2"})
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, FloorScheduleAnnotation, fe.Field)
	assert.Contains(t, fe.Allowed, `zone "Europe/Berlni"`)

	_, err = ParseAnnotations(map[string]string{FloorLeadTimeAnnotation: "25h"})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, FloorLeadTimeAnnotation, fe.Field)

	for _, bad := range []string{"idle", "/a b", "/\x00", "/" + strings.Repeat("x", 1024)} {
		_, err = ParseAnnotations(map[string]string{IdleCheckPathAnnotation: bad})
		require.ErrorAs(t, err, &fe, bad)
		assert.Equal(t, IdleCheckPathAnnotation, fe.Field)
	}

	for _, bad := range []string{"Freeze", "zero", " stop"} {
		_, err = ParseAnnotations(map[string]string{IdleModeAnnotation: bad})
		require.ErrorAs(t, err, &fe, bad)
		assert.Equal(t, IdleModeAnnotation, fe.Field)
		assert.Contains(t, fe.Allowed, `"stop", "freeze" or "reserve"`)
	}
	for _, m := range []IdleMode{IdleModeStop, IdleModeFreeze, IdleModeReserve} {
		got, err := ParseAnnotations(map[string]string{IdleModeAnnotation: string(m)})
		require.NoError(t, err)
		assert.Equal(t, m, got.IdleMode)
	}

	for _, bad := range []string{"0s", "500ms", "25h", "-1m", "ten minutes"} {
		_, err = ParseAnnotations(map[string]string{StandbyRetentionAnnotation: bad})
		require.ErrorAs(t, err, &fe, bad)
		assert.Equal(t, StandbyRetentionAnnotation, fe.Field)
		assert.Contains(t, fe.Allowed, "[1s, 24h0m0s]")
	}
	got, err := ParseAnnotations(map[string]string{StandbyRetentionAnnotation: "2m"})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, *got.StandbyRetention)

	got, err = ParseAnnotations(map[string]string{SocketActivationAnnotation: "true"})
	require.NoError(t, err, "other zeroscale.dev/ keys are other parsers'")
	assert.Equal(t, Scaling{}, got)

	_, err = ParseAnnotations(map[string]string{
		FloorScheduleAnnotation: "* 00:00-24:00 UTC = 5",
		MaxScaleAnnotation:      "3",
	})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, FloorScheduleAnnotation, fe.Field)

}

// FuzzParseSchedule: no input panics, errors name a window, and anything
// accepted renders canonically (parse → String → parse is the same
// schedule, with the same floor at any time).
func FuzzParseSchedule(f *testing.F) {
	f.Add("Mon-Fri 08:00-18:00 Europe/Berlin = 2", int64(0), int64(0))
	f.Add("Fri-Mon 22:00-06:00 UTC = 3; * 00:00-24:00 America/New_York = 1", int64(1786000000), int64(3600))
	f.Add("sat,sun 10:00-00:00 Asia/Tokyo=7", int64(1796000000), int64(86400))
	f.Add("Mon 08:00-18:00 UTC = 1;;", int64(0), int64(0))
	f.Add("Mon-Mon 23:59-00:01 UTC = 2147483647", int64(-1), int64(60))
	f.Fuzz(func(t *testing.T, expr string, unix, leadSeconds int64) {
		s, err := ParseSchedule(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "window ") && !strings.HasPrefix(err.Error(), "schedule ") {
				t.Fatalf("error %q does not name the window", err)
			}
			if !s.IsZero() {
				t.Fatal("non-zero Schedule returned with an error")
			}
			return
		}
		back, err := ParseSchedule(s.String())
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", s.String(), expr, err)
		}
		if back.String() != s.String() {
			t.Fatalf("rendering is not stable: %q then %q", s.String(), back.String())
		}
		now := time.Unix(unix%(1<<34), 0)
		lead := time.Duration(leadSeconds%int64(MaxFloorLeadTime/time.Second+1)) * time.Second
		if lead < 0 {
			lead = -lead
		}
		got := s.Floor(now, lead)
		if got != back.Floor(now, lead) {
			t.Fatalf("%q and its rendering %q disagree at %v", expr, s.String(), now)
		}
		if got < 0 || got > s.Max() {
			t.Fatalf("floor %d outside [0, %d]", got, s.Max())
		}
		if got > s.Floor(now, lead+time.Hour) && lead+time.Hour <= MaxFloorLeadTime {
			t.Fatal("a longer lead time lowered the floor")
		}
	})
}
