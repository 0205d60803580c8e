package lockd_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/lockd"
	"switchboard/internal/problem"
)

// A single-node group, a lock taken, checked by a protected resource through
// its fencing token, refused to a second owner, and released.
func ExampleNode_Acquire() {
	dir, err := os.MkdirTemp("", "lockd-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	node, err := lockd.New(lockd.Config{DataDir: dir, BindAddr: "127.0.0.1:0"}, nil)
	if err != nil {
		panic(err)
	}
	defer node.Close()

	ctx := context.Background()
	tenant := uuid.New()
	for node.Ready() != nil { // a new node elects itself within a second or so
		time.Sleep(50 * time.Millisecond)
	}
	lock, err := node.Acquire(ctx, tenant, "nightly-report", "worker-7", 30*time.Second, 0)
	if err != nil {
		panic(err)
	}

	// The protected resource checks the token it was handed.
	current, _ := node.Verify(ctx, tenant, "nightly-report", lock.FencingToken)
	fmt.Println("token current:", current)

	_, err = node.Acquire(ctx, tenant, "nightly-report", "worker-8", 30*time.Second, 0)
	fmt.Println("second owner:", problem.Code(err))

	if err := node.Release(ctx, tenant, "nightly-report", lock.Token); err != nil {
		panic(err)
	}
	current, _ = node.Verify(ctx, tenant, "nightly-report", lock.FencingToken)
	fmt.Println("token current after release:", current)
	// Output:
	// token current: true
	// second owner: conflict
	// token current after release: false
}
