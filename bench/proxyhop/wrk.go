package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkLoad runs wrk (one thread, conns keep-alive connections, closed
// loop) against url for d and reads its summary. host, when set, is
// sent as the Host header.
func (r *runner) wrkLoad(url, host string, conns int, d time.Duration) (loadResult, error) {
	secs := max(1, int(d.Round(time.Second).Seconds()))
	argv := append([]string{}, r.loadCPU...)
	argv = append(argv, r.wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--timeout", "5s", "--latency")
	if host != "" {
		argv = append(argv, "-H", "Host: "+host)
	}
	argv = append(argv, url)
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk %s c=%d: %w", url, conns, err)
	}
	return parseWrk(out)
}

// parseWrk reads wrk 4's --latency output: the latency distribution,
// "N requests in D", the non-2xx/3xx count and socket errors.
func parseWrk(out []byte) (loadResult, error) {
	var res loadResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := wrkDuration(f[1])
			if err != nil {
				return res, err
			}
			switch f[0] {
			case "50%":
				res.P50 = d
			case "90%":
				res.P90 = d
			case "99%":
				res.P99 = d
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return res, fmt.Errorf("wrk: %q: %w", sc.Text(), err)
			}
			d, err := wrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return res, err
			}
			res.Requests, res.Elapsed = n, d
		case len(f) == 4 && f[0] == "Non-2xx":
			res.Non2xx, _ = strconv.ParseInt(f[3], 10, 64)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 3; i < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64)
				res.Errors += n
			}
		}
	}
	if res.Elapsed == 0 {
		return res, fmt.Errorf("wrk: no summary in %q", out)
	}
	// wrk counts non-2xx/3xx among its requests; loadResult's Requests
	// are completed requests of any status, as the Go client's.
	res.Samples = int(res.Requests)
	return res, nil
}

// wrkDuration parses wrk's units (us, ms, s, m, h).
func wrkDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("wrk: duration %q: %w", s, err)
	}
	return d, nil
}
