package main

import (
	"errors"
	"io"
)

// dockerRows times Docker pause/unpause.
func dockerRows(io.Writer) error { return errors.New("not measured by this program yet") }
