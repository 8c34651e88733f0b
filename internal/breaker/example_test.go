package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeroscale/zeroscale/internal/breaker"
)

func ExampleBreaker() {
	// Container concurrency 1: one request runs, ten may wait.
	b, err := breaker.New(breaker.Params{MaxConcurrency: 1, InitialCapacity: 1})
	if err != nil {
		panic(err)
	}
	if err := b.Acquire(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("running:", b.InFlight(), "max pending:", b.MaxPending())
	fmt.Println("reserve while busy:", b.TryAcquire())
	b.Release()

	// A context that is already over is refused while waiting.
	b.SetCapacity(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = b.Acquire(ctx)
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// running: 1 max pending: 11
	// reserve while busy: false
	// true
}
