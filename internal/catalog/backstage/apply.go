package backstage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// Apply reads a catalog file and imports it into store as source, all or
// nothing. A file with errors applies nothing: its result (every error,
// with its document and line) is kept as the source's last import, so the
// team that owns the file sees it, and the error returned says how many.
// With dryRun the file is only read and checked.
func Apply(ctx context.Context, store *catalog.Store, tenant uuid.UUID, source string, data []byte, dryRun bool, allow access.Check) (catalog.ImportResult, error) {
	res := catalog.ImportResult{Source: source, At: time.Now().UTC(), Actor: audit.ActorFrom(ctx).Name,
		Created: []string{}, Updated: []string{}, Orphaned: []string{}, Missing: []string{}, Errors: []catalog.ImportError{}}
	if !catalog.ValidSource(source) {
		return res, problem.Invalid(map[string]string{"source": "must be 1-200 letters, digits and ._/:@- (name the file or repository the catalog comes from)"})
	}
	parsed, err := Parse(data, Options{})
	if err != nil {
		return res, err
	}
	if err := parsed.Err(); err != nil {
		res.Errors = parsed.ImportErrors()
		if !dryRun {
			if rerr := store.RecordImport(ctx, tenant, res); rerr != nil {
				return res, rerr
			}
		}
		return res, unprocessable(res.Errors, err)
	}
	if dryRun {
		for _, e := range parsed.Entities {
			res.Created = append(res.Created, e.Ref().String())
		}
		res.Relations = len(parsed.Relations)
		return res, nil
	}
	res, err = store.Import(ctx, tenant, source, parsed.Entities, parsed.Relations, allow)
	if pe, ok := problem.As(err); ok && (pe.Code == problem.CodeInvalid || pe.Code == problem.CodeForbidden) {
		res.Applied = false
		res.Errors = append(res.Errors, catalog.ImportError{Message: pe.Message})
		for f, m := range pe.Fields {
			res.Errors = append(res.Errors, catalog.ImportError{Field: f, Message: m})
		}
		if rerr := store.RecordImport(ctx, tenant, res); rerr != nil {
			return res, rerr
		}
	}
	return res, err
}

// unprocessable is err with every import error as a field of the problem,
// keyed by where it is ("document 2, line 14: metadata.name").
func unprocessable(errs []catalog.ImportError, err error) error {
	pe, _ := problem.As(err)
	out := &problem.Error{Code: problem.CodeUnprocessable, Message: pe.Message, Fields: map[string]string{}}
	for _, e := range errs {
		key := fmt.Sprintf("document %d", e.Document)
		if e.Line > 0 {
			key += fmt.Sprintf(", line %d", e.Line)
		}
		if e.Field != "" {
			key += ": " + e.Field
		}
		if prev, ok := out.Fields[key]; ok {
			out.Fields[key] = prev + "; " + e.Message
			continue
		}
		out.Fields[key] = e.Message
	}
	return out
}
