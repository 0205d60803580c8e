package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/internal/idempotency"
	"switchboard/internal/problem"
	"switchboard/internal/web"
)

// teeWriter keeps a copy of the response body for the idempotency record.
type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.buf.Len() <= MaxBodyBytes {
		w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotent honours Idempotency-Key on a creating POST (route.Idempotent):
// the first request with a key runs and its answer (status, content type,
// body) is stored if it succeeded with a 2xx (any other answer, a
// follower's redirect included, frees the key again); a retry with the
// same key and request gets that answer again with Idempotency-Replayed:
// true. An answer that holds a secret shown once (markSecret) is never
// stored: the retry learns the first request succeeded, not the secret.
func (a *API) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := req.Header.Get("Idempotency-Key")
		if key == "" {
			return next(c)
		}
		if !validKey(key) {
			return problem.Invalid(map[string]string{"Idempotency-Key": "must be 1-255 visible ASCII characters"})
		}
		body, err := readBody(req)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		io.WriteString(h, req.Method+" "+req.URL.RequestURI()+"\n")
		h.Write(body)

		p := principal(c)
		caller := "user:" + p.UserID.String()
		if p.TokenID != [16]byte{} {
			caller = "token:" + p.TokenID.String()
		}
		ctx := req.Context()
		stored, err := a.idem.Claim(ctx, p.Tenant, caller, key, h.Sum(nil))
		if err != nil {
			return err
		}
		if stored != nil {
			c.Response().Header().Set("Idempotency-Replayed", "true")
			return c.Blob(stored.Status, stored.ContentType, stored.Body)
		}

		tee := &teeWriter{ResponseWriter: c.Response().Writer}
		c.Response().Writer = tee
		if err := next(c); err != nil {
			c.Error(err)
		}
		res := c.Response()
		// The answer is recorded even if the client has gone away.
		ctx = context.WithoutCancel(ctx)
		switch {
		case res.Status < 200 || res.Status >= 300 || tee.buf.Len() > MaxBodyBytes:
			// A refused request wrote nothing; a failed one may be retried.
			// Either way the key is free again, for the corrected request.
			err = a.idem.Release(ctx, p.Tenant, caller, key)
		case c.Get(secretKey) != nil:
			// The answer holds a secret shown once (a new API token): keep
			// the key, so a retry creates nothing, but never the secret.
			pr := web.Problem{Type: "urn:switchboard:problem:conflict", Title: http.StatusText(http.StatusConflict), Status: http.StatusConflict, Code: problem.CodeConflict,
				Detail: "the first request with this Idempotency-Key succeeded; its answer held a secret that is shown only once", Instance: req.URL.Path}
			var body bytes.Buffer
			if err = web.WriteJSON(&body, pr); err == nil {
				err = a.idem.Complete(ctx, p.Tenant, caller, key, idempotency.Response{Status: http.StatusConflict, ContentType: "application/problem+json", Body: body.Bytes()})
			}
		default:
			err = a.idem.Complete(ctx, p.Tenant, caller, key, idempotency.Response{Status: res.Status, ContentType: res.Header().Get(echo.HeaderContentType), Body: tee.buf.Bytes()})
		}
		if err != nil {
			a.log.ErrorContext(ctx, "record idempotency key", "err", err)
		}
		return nil
	}
}

const secretKey = "switchboard.secret"

// markSecret says the answer holds a secret shown once (an API token, a
// lock's token): it is never stored for a replay.
func markSecret(c echo.Context) { c.Set(secretKey, true) }
