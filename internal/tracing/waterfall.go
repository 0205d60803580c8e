package tracing

import (
	"cmp"
	"slices"
	"time"
)

// Row is a span placed in a trace's waterfall.
type Row struct {
	Span
	// Depth is how many ancestors the span has in the trace (0: a root, or
	// a span whose parent did not arrive).
	Depth int
	// Children is how many spans name this one as their parent.
	Children int
	// Orphan: the span names a parent the trace does not hold.
	Orphan bool
	// Critical marks the spans on the critical path: the chain of work
	// that decided when the trace ended.
	Critical bool
	// Offset and Width place the span's bar, in percent of the trace.
	Offset, Width float64
}

// Waterfall orders a trace's spans as a tree, each span before its
// children and siblings by start time, roots (and spans whose parent is
// missing) by start time. It also returns when the trace starts and how
// long it lasts (from the first start to the last end).
func Waterfall(spans []Span) (rows []Row, start time.Time, total time.Duration) {
	if len(spans) == 0 {
		return nil, time.Time{}, 0
	}
	byID := make(map[string]int, len(spans))
	for i, s := range spans {
		if _, dup := byID[s.SpanID]; !dup {
			byID[s.SpanID] = i
		}
	}
	start = spans[0].Start
	end := spans[0].end()
	children := make(map[int][]int, len(spans))
	var roots []int
	for i, s := range spans {
		if s.Start.Before(start) {
			start = s.Start
		}
		if e := s.end(); e.After(end) {
			end = e
		}
		if p, ok := byID[s.ParentSpanID]; ok && s.ParentSpanID != "" && p != i && byID[s.SpanID] == i {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	byStart := func(a, b int) int {
		return cmp.Or(spans[a].Start.Compare(spans[b].Start), cmp.Compare(a, b))
	}
	slices.SortFunc(roots, byStart)
	for _, c := range children {
		slices.SortFunc(c, byStart)
	}
	// The critical path runs through the trace's root: the first span
	// without a parent (else the first span).
	critical := make([]bool, len(spans))
	for i, r := range roots {
		if spans[r].ParentSpanID == "" || i == len(roots)-1 {
			if spans[r].ParentSpanID != "" {
				r = roots[0]
			}
			markCritical(spans, children, r, spans[r].end(), critical)
			break
		}
	}
	total = end.Sub(start)
	rows = make([]Row, 0, len(spans))
	placed := make([]bool, len(spans))
	// An explicit stack: a long trace may be deeper than is wise to recurse.
	type item struct{ span, depth int }
	var stack []item
	for _, r := range slices.Backward(roots) {
		stack = append(stack, item{r, 0})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if placed[it.span] { // a cycle of parent ids
			continue
		}
		placed[it.span] = true
		s := spans[it.span]
		row := Row{Span: s, Depth: it.depth, Children: len(children[it.span]), Critical: critical[it.span],
			Orphan: it.depth == 0 && s.ParentSpanID != ""}
		row.Offset, row.Width = bar(s, start, total)
		rows = append(rows, row)
		for _, c := range slices.Backward(children[it.span]) {
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	// Spans in a cycle of parent ids reach no root: show them as roots.
	for i, s := range spans {
		if !placed[i] && byID[s.SpanID] == i {
			row := Row{Span: s, Children: len(children[i]), Orphan: true}
			row.Offset, row.Width = bar(s, start, total)
			rows = append(rows, row)
		}
	}
	return rows, start, total
}

func (s Span) end() time.Time { return s.Start.Add(time.Duration(s.DurationNs)) }

// bar places a span in a trace that starts at start and lasts total.
func bar(s Span, start time.Time, total time.Duration) (offset, width float64) {
	if total <= 0 {
		return 0, 100
	}
	offset = float64(s.Start.Sub(start)) / float64(total) * 100
	width = float64(s.DurationNs) / float64(total) * 100
	return offset, min(max(width, 0.2), 100-offset)
}

// markCritical marks span i and, walking back from until (the end of the
// part of its parent it decides), the children whose ends decide it: the
// child that ends last, then the one that ends last before that child
// started, and so on. Time no child covers is the span's own work.
func markCritical(spans []Span, children map[int][]int, i int, until time.Time, critical []bool) {
	type item struct {
		span  int
		until time.Time
	}
	stack := []item{{i, until}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if critical[it.span] {
			continue
		}
		critical[it.span] = true
		kids := slices.Clone(children[it.span])
		slices.SortFunc(kids, func(a, b int) int { return spans[b].end().Compare(spans[a].end()) })
		cursor := it.until
		for _, c := range kids {
			e := spans[c].end()
			if e.After(cursor) {
				// A child that ends after its parent (an asynchronous
				// consumer, say) counts up to the parent's end.
				if !spans[c].Start.Before(cursor) {
					continue
				}
				e = cursor
			}
			stack = append(stack, item{c, e})
			cursor = spans[c].Start
		}
	}
}
