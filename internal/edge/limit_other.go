//go:build !unix

package edge

func openFileLimit() uint64 { return 0 }
