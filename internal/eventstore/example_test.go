package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/google/uuid"

	"switchboard/internal/database"
	"switchboard/internal/eventstore"
	"switchboard/internal/problem"
)

// These examples need a PostgreSQL database, so they are compiled but not
// run; the package's tests run the same calls against a real one.

func openStore(ctx context.Context) (*eventstore.Store, uuid.UUID) {
	db, err := database.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := eventstore.New(eventstore.Config{}, db, slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Start(); err != nil { // the sequencer and the listener
		log.Fatal(err)
	}
	return store, uuid.MustParse(os.Getenv("TENANT_ID"))
}

func ExampleStore_Append() {
	ctx := context.Background()
	store, tenant := openStore(ctx)
	defer store.Close()

	// Open an order: the stream must not exist yet.
	opened := eventstore.EventData{
		ID:       uuid.New(), // keep it to retry safely
		Type:     "OrderOpened",
		Data:     json.RawMessage(`{"customer":"c-7"}`),
		Metadata: json.RawMessage(`{"correlation_id":"req-42"}`),
	}
	res, err := store.Append(ctx, tenant, "order-123", eventstore.NoStream(), []eventstore.EventData{opened})
	if err != nil {
		log.Fatal(err)
	}

	// Add a line only if nobody wrote in between.
	line := eventstore.EventData{Type: "LineAdded", Data: json.RawMessage(`{"sku":"a","qty":2}`)}
	_, err = store.Append(ctx, tenant, "order-123", eventstore.Exact(res.LastVersion), []eventstore.EventData{line})
	if problem.Code(err) == problem.CodeConflict {
		// Someone did: read the stream again, decide again.
		fmt.Println(err)
		return
	}
	if err != nil {
		log.Fatal(err)
	}

	// Retrying the first append (a lost response, say) is safe: it
	// returns the original versions.
	again, err := store.Append(ctx, tenant, "order-123", eventstore.NoStream(), []eventstore.EventData{opened})
	fmt.Println(again.Duplicate, again.FirstVersion, err)
}

func ExampleStore_ReadStream() {
	ctx := context.Background()
	store, tenant := openStore(ctx)
	defer store.Close()

	// Page through a stream from the start...
	from := int64(0)
	for {
		page, err := store.ReadStream(ctx, tenant, "order-123", from, eventstore.Forward, 100)
		if err != nil {
			log.Fatal(err) // problem.CodeNotFound for a stream that does not exist
		}
		for _, e := range page {
			fmt.Println(e.Version, e.Type, string(e.Data))
		}
		if len(page) < 100 {
			break
		}
		from = page[len(page)-1].Version + 1
	}

	// ...or take its last event.
	last, err := store.ReadStream(ctx, tenant, "order-123", eventstore.End, eventstore.Backward, 1)
	if err == nil && len(last) == 1 {
		fmt.Println("at version", last[0].Version)
	}
}

func ExampleStore_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, tenant := openStore(ctx)
	defer store.Close()

	// Resume after the last position this consumer handled.
	checkpoint := int64(41)
	sub, err := store.Subscribe(ctx, tenant, checkpoint+1, "order")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for e := range sub.Events() {
		// Stored events first, then new ones as they commit; each once,
		// in position order.
		fmt.Println(e.Position, e.Stream, e.Version, e.Type)
		checkpoint = e.Position
	}
	if err := sub.Err(); err != nil {
		log.Fatal(err)
	}
}
