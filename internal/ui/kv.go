package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/lockd"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// kvShown bounds the keys the key-value page lists; a prefix narrows it.
const kvShown = 500

// registerKV adds the key-value page to the tenant group t. Its list
// follows the REST API's stream /api/v1/tenants/{tenant}/kv-watch
// (authenticated by the session cookie) and reloads on each change.
func (u *UI) registerKV(t *echo.Group) {
	t.GET("/kv", u.kvPage)
	t.GET("/kv/keys", u.kvKeys)
	t.POST("/kv", u.putKV)
	t.POST("/kv/delete", u.deleteKV)
}

func (u *UI) kvPage(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "kv", "")); err != nil {
		return err
	}
	form := views.KVForm{}
	if key := c.QueryParam("edit"); key != "" && u.d.Locks != nil {
		kv, err := u.d.Locks.Get(ctx, p.Tenant, key)
		switch {
		case err == nil:
			form = views.KVForm{Key: key, Value: kvText(kv.Value), Revision: strconv.FormatUint(kv.Revision, 10)}
		case problem.Code(err) == problem.CodeNotFound:
			c.Set(pageKey, withFlash(c.Get(pageKey).(views.Page), views.FlashError, "Key "+key+" does not exist (any more); write it anew below."))
			form = views.KVForm{Key: key}
		default:
			msg, err := serviceMessage(err)
			if err != nil {
				return err
			}
			c.Set(pageKey, withFlash(c.Get(pageKey).(views.Page), views.FlashError, "The key could not be read: "+msg+"."))
		}
	}
	return u.renderKV(c, http.StatusOK, form, nil)
}

func (u *UI) renderKV(c echo.Context, status int, form views.KVForm, errs views.FormErrors) error {
	v, err := u.kvView(c, c.QueryParam("prefix"))
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodPost {
		v.Prefix = c.FormValue("prefix")
	}
	v.Form, v.Errs = form, errs
	return render(c, status, views.KVPage(page(c, "Key-value", views.SectionKV), v))
}

// kvKeys is the list of keys the live view reloads.
func (u *UI) kvKeys(c echo.Context) error {
	if err := u.awaitApplied(c); err != nil {
		return err
	}
	v, err := u.kvView(c, c.QueryParam("prefix"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.KVTable(page(c, "", views.SectionKV), v))
}

// kvView reads the keys under prefix for a user who may read them.
func (u *UI) kvView(c echo.Context, prefix string) (views.KVView, error) {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "kv", "")); err != nil {
		return views.KVView{}, err
	}
	v := views.KVView{Available: u.d.Locks != nil, Prefix: prefix,
		CanWrite: u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "kv", "")) == nil}
	if !v.Available {
		return v, nil
	}
	kvs, err := u.d.Locks.AppliedKV(p.Tenant, prefix)
	if err != nil {
		if pe, ok := problem.As(err); ok && pe.Code == problem.CodeInvalid {
			v.Err = "Keys starting with that cannot exist: " + fieldMessages(pe) + "."
			return v, nil
		}
		msg, err := serviceMessage(err)
		v.Err = "The keys could not be read: " + msg + "."
		return v, err
	}
	if len(kvs) > kvShown {
		kvs, v.More = kvs[:kvShown], true
	}
	for _, kv := range kvs {
		v.Keys = append(v.Keys, views.KVRow{Key: kv.Key, Value: kvText(kv.Value), Revision: kv.Revision, CreateRevision: kv.CreateRevision})
	}
	return v, nil
}

// putKV writes the form's key: with a revision only at that revision (an
// edit), without only if the key does not exist (a new key). Either way a
// write that would overwrite a change the user has not seen is refused.
func (u *UI) putKV(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	f := views.KVForm{Key: c.FormValue("key"), Value: c.FormValue("value"), Revision: strings.TrimSpace(c.FormValue("revision"))}
	if err := u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "kv", f.Key)); err != nil {
		return err
	}
	if u.d.Locks == nil {
		return problem.Errorf(problem.CodeUnavailable, "the key-value space is not running on this server")
	}
	errs := views.FormErrors{}
	if f.Key == "" {
		errs["key"] = "Name the key, such as flags/checkout."
	}
	var opts lockd.PutOptions
	if f.Revision == "" {
		opts.IfAbsent = true
	} else if rev, err := strconv.ParseUint(f.Revision, 10, 64); err != nil || rev == 0 {
		errs[""] = "This form is broken: reload the page and edit the key again."
	} else {
		opts.IfRevision = rev
	}
	var value bytes.Buffer
	switch raw := strings.TrimSpace(f.Value); {
	case raw == "":
		errs["value"] = `Give a JSON value, such as {"enabled": true}, 42 or "on".`
	case json.Compact(&value, []byte(raw)) != nil:
		errs["value"] = `This is not JSON. Text needs quotes, such as "on"; objects look like {"enabled": true}.`
	}
	if len(errs) > 0 {
		return u.renderKV(c, http.StatusUnprocessableEntity, f, errs)
	}
	kv, err := u.d.Locks.Put(ctx, p.Tenant, f.Key, value.Bytes(), opts)
	if err != nil {
		if problem.Code(err) == problem.CodePrecondition {
			return u.renderKV(c, http.StatusConflict, f, views.FormErrors{"": u.staleMessage(c, f.Key, opts.IfRevision, "saved")})
		}
		if pe, ok := problem.As(err); ok && pe.Code == problem.CodeInvalid {
			errs, _ := formErrors(err, nil)
			return u.renderKV(c, http.StatusUnprocessableEntity, f, errs)
		}
		msg, err := serviceMessage(err)
		if err != nil {
			return err
		}
		return u.renderKV(c, http.StatusServiceUnavailable, f, views.FormErrors{"": "Not saved: " + msg + "."})
	}
	return u.redirectWithFlash(c, views.KVPath(p.TenantSlug, c.FormValue("prefix")),
		fmt.Sprintf("Saved %s at revision %d.", kv.Key, kv.Revision))
}

// deleteKV deletes the key at the revision the list showed; a key that
// changed since is kept, and the list says so.
func (u *UI) deleteKV(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	key, prefix := c.FormValue("key"), c.FormValue("prefix")
	if err := u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "kv", key)); err != nil {
		return err
	}
	if u.d.Locks == nil {
		return problem.Errorf(problem.CodeUnavailable, "the key-value space is not running on this server")
	}
	rev, err := strconv.ParseUint(c.FormValue("revision"), 10, 64)
	if err != nil || rev == 0 {
		return problem.Errorf(problem.CodeInvalid, "this delete button is broken; reload the page and try again")
	}
	kind, msg := views.FlashSuccess, "Deleted "+key+"."
	if _, err := u.d.Locks.Delete(ctx, p.Tenant, key, rev); err != nil {
		switch problem.Code(err) {
		case problem.CodePrecondition:
			kind, msg = views.FlashError, u.staleMessage(c, key, rev, "deleted")
		case problem.CodeNotFound:
			kind, msg = views.FlashError, "Not deleted: "+key+" was deleted already."
		default:
			m, err := serviceMessage(err)
			if err != nil {
				return err
			}
			kind, msg = views.FlashError, "Not deleted: "+m+"."
		}
	}
	if !isHTMX(c) {
		if kind == views.FlashError {
			c.Set(pageKey, withFlash(c.Get(pageKey).(views.Page), kind, msg))
			return u.renderKV(c, http.StatusConflict, views.KVForm{}, nil)
		}
		return u.redirectWithFlash(c, views.KVPath(p.TenantSlug, prefix), msg)
	}
	v, err := u.kvView(c, prefix)
	if err != nil {
		return err
	}
	return htmxAnswer(c, views.KVTable(page(c, "", views.SectionKV), v), kind, msg)
}

// staleMessage explains a write refused because key is no longer at
// revision rev (or, for rev 0, exists already).
func (u *UI) staleMessage(c echo.Context, key string, rev uint64, what string) string {
	cur, err := u.d.Locks.Get(c.Request().Context(), principal(c).Tenant, key)
	switch {
	case problem.Code(err) == problem.CodeNotFound:
		return fmt.Sprintf("Not %s: %s was deleted by someone else after you opened it.", what, key)
	case err != nil:
		return fmt.Sprintf("Not %s: %s changed after you opened it.", what, key)
	case rev == 0:
		return fmt.Sprintf("Not %s: %s exists already (revision %d). Edit it from the list instead, so you see its value first.", what, key, cur.Revision)
	}
	return fmt.Sprintf("Not %s: %s changed after you opened it: you had revision %d, it is now at revision %d. Your text is kept below; open the key again to see its current value, then make your change there.",
		what, key, rev, cur.Revision)
}

// kvText shows a stored value: JSON pretty-printed, anything else as text.
func kvText(b []byte) string {
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

// fieldMessages joins the field messages of a validation error.
func fieldMessages(pe *problem.Error) string {
	var msgs []string
	for f, m := range pe.Fields {
		msgs = append(msgs, f+" "+m)
	}
	if len(msgs) == 0 {
		return pe.Message
	}
	return strings.Join(msgs, "; ")
}
