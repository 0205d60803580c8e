// The DLQ page (views/dlq.templ), live from the DLQ's stream (data-ws)
// through SwitchboardLive:
//   - a dead letter captured while the page is open gets its row at the top
//     of the table (data-rows="insert", the first unfiltered page) or is
//     counted in a notice (data-rows="count": a filter or an older page,
//     where the new row may not belong); a message that changes (back
//     from a replay) has its status cell updated;
//   - the watched replay's progress bar, state and counts follow it;
//   - clicking a row opens its drawer; a row that arrived live fetches its
//     drawer (the message with its payload, redacted as the server decides)
//     from data-page + "/messages/ID" the first time it is opened;
//   - a drawer's "Edit and replay" (views/dlq.templ, dlqEdit) for those who
//     may replay: the body, the headers and the target as the user changes
//     them become one replay request (the REST API's, dlq.ReplayRequest)
//     posted as JSON to data-page + "/replays" with the page's CSRF token:
//     "Preview" as a dry run whose plan is shown in the drawer, "Replay
//     edited" for real, after which the page follows the replay's progress
//     (?replay=ID). A JSON body that does not parse is refused in the form,
//     before any request; the server's problem+json errors are shown next
//     to the fields they name.
(function () {
  "use strict";

  var DLQ = {
    // percent is how far a replay has come, 0 to 100.
    percent: function (counts) {
      if (!counts || !counts.total) { return 0; }
      var done = (counts.confirmed || 0) + (counts.failed || 0) + (counts.skipped || 0);
      return Math.min(100, Math.floor(done * 100 / counts.total));
    },
    // destination says where a message was going, as the page does.
    destination: function (o) {
      o = o || {};
      if (o.topic) { return "topic " + o.topic; }
      if (o.queue && !o.exchange) { return "queue " + o.queue; }
      if (o.exchange || o.routing_key) {
        var s = "exchange " + (o.exchange || '""') + ", key " + (o.routing_key || '""');
        return o.queue ? s + " (queue " + o.queue + ")" : s;
      }
      return "unknown";
    },
    // cells are the texts of a message summary's row after its checkbox,
    // in the table's column order.
    cells: function (m) {
      return [
        String(m.id),
        (m.captured_at || "").replace("T", " ").slice(0, 19),
        m.reason || "",
        DLQ.destination(m.original),
        String(m.death_count || 0),
        m.status || "",
        (m.body_size || 0) + " B",
      ];
    },
    // counts is a replay's counts as the panel says them.
    counts: function (c) {
      c = c || {};
      return (c.confirmed || 0) + " of " + (c.total || 0) + " confirmed, " + (c.failed || 0) + " failed, " +
        (c.skipped || 0) + " skipped, " + (c.returned || 0) + " came back";
    },
    // notice says how many dead letters came that the table does not show.
    notice: function (n) {
      return n === 1 ? "1 new dead letter since this page was drawn." : n + " new dead letters since this page was drawn.";
    },
    // controls are the replay controls that apply in a state.
    controls: function (state) {
      if (state === "running") { return ["pause", "cancel"]; }
      if (state === "paused") { return ["resume", "cancel"]; }
      return [];
    },
    // messagePath is where a message's drawer is fetched from.
    messagePath: function (page, id) {
      return page + "/messages/" + encodeURIComponent(String(id));
    },
    // headerValue is the typed value ({type, value}) of a header edited as
    // text, keeping the type it had, or {error} saying what is wrong.
    headerValue: function (type, text) {
      var t = String(text);
      var ints = { int8: [-128, 127], int16: [-32768, 32767], int32: [-2147483648, 2147483647],
        int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], uint8: [0, 255], uint16: [0, 65535], uint32: [0, 4294967295] };
      switch (type) {
        case "string":
          return { type: "string", value: t };
        case "bytes":
          return { type: "bytes", value: base64(t) };
        case "bool":
          if (t.trim() === "true" || t.trim() === "false") { return { type: "bool", value: t.trim() === "true" }; }
          return { error: "must be true or false" };
        case "float32":
        case "float64":
          if (t.trim() === "NaN" || t.trim() === "+Inf" || t.trim() === "-Inf") { return { type: type, value: t.trim() }; }
          if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t.trim()) && isFinite(Number(t))) { return { type: type, value: Number(t) }; }
          return { error: "must be a number (or NaN, +Inf, -Inf)" };
        case "timestamp":
          if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(t.trim())) { return { type: type, value: t.trim() }; }
          return { error: "must be a time like 2026-01-02T15:04:05Z" };
      }
      var r = ints[type];
      if (!r) { return { error: "a " + type + " value cannot be edited here; remove the header or keep it" }; }
      var n = Number(t.trim());
      if (!/^[+-]?\d+$/.test(t.trim()) || n < r[0] || n > r[1]) {
        return { error: "must be a whole number from " + r[0] + " to " + r[1] };
      }
      return { type: type, value: n };
    },
    // editRequest makes the replay request of a drawer's form from what it
    // holds (readForm reads it from the page):
    //   {id, kind: "queue"|"topic", dryRun,
    //    body: null (not editable) | {text, original, json},
    //    headers: [{name, type, mode: "edit"|"remove"|"broker", text,
    //               original, removed, added}],
    //    target: {exchange, routing_key, topic} and target.original the same}
    // Only what changed is sent: an untouched body is replayed byte for
    // byte, an untouched target means where it was going. The answer is
    // {request} or {errors}, keyed as the server keys its own ("edit.body",
    // "edit.headers.NAME", "target").
    editRequest: function (s) {
      var errors = {};
      var bad = false;
      function fail(field, msg) {
        if (!errors[field]) { errors[field] = msg; }
        bad = true;
      }
      var edit = {};
      if (s.body && s.body.text !== s.body.original) {
        if (s.body.json) {
          try {
            JSON.parse(s.body.text);
          } catch (e) {
            fail("edit.body", "is not valid JSON: " + (e && e.message ? e.message : String(e)));
          }
        }
        edit.body = s.body.text;
        edit.body_encoding = "text";
      }
      var set = {};
      var remove = [];
      var names = {}; // the headers the message will have (names are case-sensitive)
      (s.headers || []).forEach(function (h) {
        if (!h.added && !h.removed) { names[h.name] = true; }
      });
      (s.headers || []).forEach(function (h) {
        if (h.mode === "broker") { return; }
        if (h.added) {
          if (h.removed) { return; }
          var name = String(h.name || "").trim();
          var key = "edit.headers." + name;
          if (!name) { return fail(key, "give the header a name"); }
          if (DLQ.brokerSet(name)) { return fail(key, "is set by the broker or the replay"); }
          if (names[name]) { return fail(key, "is already a header of this message: change its value in its row, or remove that row first"); }
          names[name] = true;
          set[name] = { type: "string", value: String(h.text) };
          return;
        }
        if (h.removed) {
          remove.push(h.name);
          return;
        }
        if (h.mode !== "edit" || h.text === h.original) { return; }
        var v = DLQ.headerValue(h.type, h.text);
        if (v.error) { return fail("edit.headers." + h.name, v.error); }
        set[h.name] = v;
      });
      if (Object.keys(set).length) { edit.headers = set; }
      if (remove.length) { edit.remove_headers = remove; }
      var target = null;
      var t = s.target || {};
      var o = t.original || {};
      if (s.kind === "topic") {
        if ((t.topic || "") !== (o.topic || "") && String(t.topic || "").trim() !== "") {
          target = { topic: String(t.topic).trim() };
        }
      } else if ((t.exchange || "") !== (o.exchange || "") || (t.routing_key || "") !== (o.routing_key || "")) {
        target = { exchange: String(t.exchange || "").trim(), routing_key: String(t.routing_key || "").trim() };
      }
      if (bad) { return { errors: errors }; }
      var req = { message_ids: [s.id], dry_run: !!s.dryRun };
      if (Object.keys(edit).length) { req.edit = edit; }
      if (target) { req.target = target; }
      return { request: req };
    },
    // brokerSet says the broker (dead-lettering, redelivery) or a replay
    // sets header name, as the page does (views.BrokerSetHeader).
    brokerSet: function (name) {
      var k = String(name).toLowerCase();
      return k === "x-death" || k === "x-delivery-count" || k.indexOf("x-first-death-") === 0 ||
        k.indexOf("x-last-death-") === 0 || k.indexOf("x-switchboard-") === 0;
    },
    // slotOf is where the form shows the server's error on field: the
    // body, a header's row, the target, or "" (the form's own message).
    slotOf: function (field) {
      if (field === "edit.body" || field === "edit.body_encoding") { return "edit.body"; }
      if (field.indexOf("edit.headers.") === 0) { return field; }
      if (field === "target" || field.indexOf("target.") === 0) { return "target"; }
      return "";
    },
    // planLines says a dry run's plan as sentences.
    planLines: function (plan) {
      plan = plan || {};
      var out = [(plan.replay || 0) + " of " + (plan.total || 0) + " would be replayed."];
      (plan.destinations || []).forEach(function (d) {
        out.push(d.count + " to " + DLQ.destination(d.destination));
      });
      (plan.skipped || []).forEach(function (k) {
        out.push("message " + k.message_id + " skipped: " + k.reason);
      });
      return out;
    },
    // changes says what a replay request changes of its message.
    changes: function (req) {
      var e = (req && req.edit) || {};
      var out = [];
      if (e.body !== undefined) { out.push("body edited"); }
      var set = Object.keys(e.headers || {}).sort();
      if (set.length) { out.push("headers set: " + set.join(", ")); }
      if ((e.remove_headers || []).length) { out.push("headers removed: " + e.remove_headers.slice().sort().join(", ")); }
      if (req && req.target) {
        out.push("target: " + (req.target.topic ? "topic " + req.target.topic :
          "exchange " + (req.target.exchange || '""') + ", key " + (req.target.routing_key || "(its own)")));
      }
      return out.length ? "Changes: " + out.join("; ") + "." : "No change: it is replayed as it was.";
    },
  };

  // base64 encodes text as UTF-8, then base64 (a "bytes" header's value).
  function base64(text) {
    var bytes = new TextEncoder().encode(text);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin);
  }

  var STATUS_COL = 6; // the status cell's index in a row (after the checkbox)

  function testid(id) { return document.querySelector('[data-testid="' + id + '"]'); }

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  // drawerRow is the row below a live message's row: a closed drawer that
  // fetches its content when first opened.
  function drawerRow(page, m, cols) {
    var tr = document.createElement("tr");
    tr.className = "dlq-drawer-row";
    var td = document.createElement("td");
    td.colSpan = cols;
    var det = document.createElement("details");
    det.setAttribute("data-testid", "dlq-drawer-" + m.id);
    det.setAttribute("data-src", DLQ.messagePath(page, m.id));
    var sum = document.createElement("summary");
    sum.textContent = "Message " + m.id + (m.message_id ? " " + m.message_id : "");
    var wait = document.createElement("p");
    wait.className = "muted dlq-drawer-content";
    wait.textContent = "Loading…";
    det.appendChild(sum);
    det.appendChild(wait);
    td.appendChild(det);
    tr.appendChild(td);
    return tr;
  }

  function addRow(root, tbody, m) {
    var have = testid("dlq-row-" + m.id);
    if (have) {
      var st = testid("dlq-status-" + m.id);
      if (st && m.status) { st.textContent = m.status; }
      return;
    }
    var tr = document.createElement("tr");
    tr.setAttribute("data-testid", "dlq-row-" + m.id);
    tr.setAttribute("data-id", String(m.id));
    tr.className = "dlq-row dlq-new";
    var td = document.createElement("td");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "id";
    box.value = String(m.id);
    box.setAttribute("aria-label", "Select message " + m.id);
    td.appendChild(box);
    tr.appendChild(td);
    var texts = DLQ.cells(m);
    for (var i = 0; i < texts.length; i++) {
      var c = cell(tr, texts[i]);
      if (i + 1 === STATUS_COL) { c.setAttribute("data-testid", "dlq-status-" + m.id); }
    }
    var drawer = drawerRow(root.getAttribute("data-page"), m, texts.length + 1);
    tbody.insertBefore(drawer, tbody.firstChild);
    tbody.insertBefore(tr, drawer);
    var none = testid("dlq-no-messages");
    if (none) { none.hidden = true; }
  }

  // load fills a live row's drawer from the server, once.
  function load(det) {
    var src = det.getAttribute("data-src");
    if (!src || det.getAttribute("data-loaded") || typeof fetch !== "function") { return; }
    det.setAttribute("data-loaded", "1");
    var box = det.querySelector(".dlq-drawer-content");
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (!res.ok) { throw new Error("the message could not be read (" + res.status + ")"); }
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
        var from = doc.body.firstChild;
        var into = document.createElement("div");
        into.className = "dlq-drawer-content";
        while (from && from.firstChild) { into.appendChild(document.adoptNode(from.firstChild)); }
        det.replaceChild(into, box);
      })
      .catch(function (err) {
        det.removeAttribute("data-loaded");
        box.textContent = String(err && err.message ? err.message : err) + "; close and open to try again.";
        box.className = "text-error dlq-drawer-content";
      });
  }

  // onRowClick opens or closes the drawer of the clicked row (a click on
  // the checkbox, a link or a button keeps its own meaning).
  function onRowClick(ev) {
    var t = ev.target;
    if (!t || !t.closest || t.closest("input, a, button, label, summary, details")) { return; }
    var tr = t.closest("tr[data-id]");
    if (!tr) { return; }
    var next = tr.nextElementSibling;
    var det = next && next.querySelector("details");
    if (!det) { return; }
    det.open = !det.open;
    if (det.open) { load(det); }
  }

  function showReplay(r) {
    var panel = testid("replay-panel");
    if (!panel) { return; }
    var pct = DLQ.percent(r.counts);
    var bar = panel.querySelector('[data-testid="replay-progress"]');
    bar.value = pct;
    bar.setAttribute("aria-valuenow", String(pct));
    bar.textContent = pct + "%";
    panel.querySelector('[data-testid="replay-state"]').textContent = r.state;
    panel.querySelector('[data-testid="replay-counts"]').textContent = DLQ.counts(r.counts);
    panel.querySelector('[data-testid="replay-note"]').textContent = r.note || "";
    var shown = DLQ.controls(r.state);
    ["pause", "resume", "cancel"].forEach(function (a) {
      var btn = panel.querySelector('[data-testid="replay-' + a + '"]');
      if (btn) { btn.hidden = shown.indexOf(a) < 0; }
    });
  }

  // showHistory updates a replay's row of the history table.
  function showHistory(r) {
    var row = testid("replay-row-" + r.id);
    if (!row) { return; }
    var c = r.counts || {};
    var values = { state: r.state, total: c.total, confirmed: c.confirmed, failed: c.failed, skipped: c.skipped, returned: c.returned };
    Object.keys(values).forEach(function (k) {
      var td = row.querySelector('[data-field="' + k + '"]');
      if (td) { td.textContent = String(values[k] === undefined ? 0 : values[k]); }
    });
  }

  // refreshPanel reads the watched replay's panel afresh from the page:
  // what happened before the stream was live is in it (a replay may end
  // before the page's stream connects).
  function refreshPanel() {
    var panel = testid("replay-panel");
    if (!panel || typeof fetch !== "function") { return; }
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.ok ? res.text() : ""; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector('[data-testid="replay-panel"]');
        if (!fresh) { return; }
        while (panel.firstChild) { panel.removeChild(panel.firstChild); }
        while (fresh.firstChild) { panel.appendChild(document.adoptNode(fresh.firstChild)); }
      })
      .catch(function () {});
  }

  // ---- Edit and replay (a drawer's [data-edit-form]) ----

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function q(box, sel) { return box.querySelector(sel); }

  // readForm reads a drawer's form into what editRequest takes.
  function readForm(box, dryRun) {
    var s = { id: Number(box.getAttribute("data-id")), kind: box.getAttribute("data-kind"), dryRun: dryRun, body: null, headers: [], target: { original: {} } };
    var body = q(box, '[data-edit="body"]');
    if (body) { s.body = { text: body.value, original: body.defaultValue, json: body.getAttribute("data-json") === "true" }; }
    box.querySelectorAll('[data-edit="headers"] > tr').forEach(function (tr) {
      var added = tr.getAttribute("data-added") === "true";
      var value = q(tr, '[data-edit="value"]');
      var name = added ? q(tr, '[data-edit="name"]').value : tr.getAttribute("data-header");
      s.headers.push({ name: name, type: tr.getAttribute("data-type"), mode: tr.getAttribute("data-mode"), added: added,
        removed: tr.getAttribute("data-removed") === "true", text: value ? value.value : "", original: value ? value.defaultValue : "" });
    });
    ["exchange", "routing_key", "topic"].forEach(function (k) {
      var el = q(box, '[data-edit="' + k + '"]');
      if (el) {
        s.target[k] = el.value;
        s.target.original[k] = el.defaultValue;
      }
    });
    return s;
  }

  // errorSlot is the element showing errors for key ("edit.body",
  // "edit.headers.NAME", "target"), or null.
  function errorSlot(box, key) {
    var found = null;
    box.querySelectorAll("[data-error-for]").forEach(function (el) {
      if (!found && el.getAttribute("data-error-for") === key) { found = el; }
    });
    if (found) { return found; }
    // An added header's row is named by what its name input holds.
    box.querySelectorAll('[data-edit="headers"] > tr[data-added="true"]').forEach(function (tr) {
      if (!found && "edit.headers." + q(tr, '[data-edit="name"]').value.trim() === key) { found = q(tr, ".field-error"); }
    });
    return found;
  }

  function clearErrors(box) {
    box.querySelectorAll(".field-error").forEach(function (el) {
      el.textContent = "";
      el.hidden = true;
    });
    box.querySelectorAll('[aria-invalid="true"]').forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var general = q(box, "[data-edit-error]");
    general.textContent = "";
    general.hidden = true;
  }

  // showErrors puts each error next to its field and what has no field
  // (with detail, the server's sentence) in the form's own message.
  function showErrors(box, errors, detail) {
    var rest = [];
    Object.keys(errors || {}).sort().forEach(function (field) {
      var key = DLQ.slotOf(field);
      var slot = key ? errorSlot(box, key) : null;
      if (!slot) {
        rest.push(field + ": " + errors[field]);
        return;
      }
      var what = key === "edit.body" ? "The body" : key === "target" ? "The target" : "This header";
      var msg = (field === key ? what : field) + " " + errors[field] + ".";
      slot.textContent = slot.textContent ? slot.textContent + " " + msg : msg;
      slot.hidden = false;
      var input = slot.parentNode.querySelector("textarea, input");
      if (input) { input.setAttribute("aria-invalid", "true"); }
    });
    if (detail || rest.length) {
      var general = q(box, "[data-edit-error]");
      general.textContent = [detail || ""].concat(rest).filter(Boolean).join(" ");
      general.hidden = false;
    }
  }

  function showPlan(box, plan, req) {
    var out = q(box, "[data-edit-plan]");
    while (out.firstChild) { out.removeChild(out.firstChild); }
    var h = document.createElement("h3");
    h.textContent = "Preview";
    out.appendChild(h);
    var lines = DLQ.planLines(plan);
    var p = document.createElement("p");
    p.textContent = lines[0];
    out.appendChild(p);
    var ul = document.createElement("ul");
    lines.slice(1).forEach(function (l) {
      var li = document.createElement("li");
      li.textContent = l;
      ul.appendChild(li);
    });
    out.appendChild(ul);
    var c = document.createElement("p");
    c.className = "muted";
    c.textContent = DLQ.changes(req);
    out.appendChild(c);
    out.hidden = false;
  }

  function busy(box, on) {
    box.querySelectorAll('[data-edit-action="preview"], [data-edit-action="replay"]').forEach(function (b) { b.disabled = on; });
  }

  // send posts the form's request: a dry run (the preview) or the replay,
  // after which the page follows the replay's progress.
  function send(root, box, dryRun) {
    clearErrors(box);
    var r = DLQ.editRequest(readForm(box, dryRun));
    if (r.errors) {
      showErrors(box, r.errors, "Nothing was sent: fix what is marked.");
      return;
    }
    if (typeof fetch !== "function") { return; }
    busy(box, true);
    fetch(root.getAttribute("data-page") + "/replays", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(r.request),
    }).then(function (res) {
      return res.text().then(function (text) {
        var doc = null;
        try { doc = JSON.parse(text); } catch (e) { doc = null; }
        return { res: res, doc: doc };
      });
    }).then(function (a) {
      busy(box, false);
      if (!a.res.ok) {
        if (a.doc && a.doc.detail) {
          showErrors(box, a.doc.errors, a.doc.detail);
        } else {
          showErrors(box, {}, "The server refused (" + a.res.status + "); reload the page and try again.");
        }
        return;
      }
      if (dryRun) {
        showPlan(box, a.doc && a.doc.plan, r.request);
        return;
      }
      var id = a.doc && a.doc.replay && a.doc.replay.id;
      location.assign((a.doc && a.doc.watch) || (root.getAttribute("data-page") + "?replay=" + encodeURIComponent(id)));
    }).catch(function (err) {
      busy(box, false);
      showErrors(box, {}, "The request failed: " + (err && err.message ? err.message : err) + ".");
    });
  }

  // toggleRemove marks a header's row to be removed, or keeps it again.
  function toggleRemove(btn) {
    var tr = btn.closest("tr");
    var removed = tr.getAttribute("data-removed") !== "true";
    tr.setAttribute("data-removed", String(removed));
    tr.classList.toggle("muted", removed);
    tr.style.textDecoration = removed ? "line-through" : "";
    tr.querySelectorAll("input").forEach(function (i) { i.disabled = removed; });
    btn.textContent = removed ? "Keep" : "Remove";
  }

  // addHeader adds a row for a new text header.
  function addHeader(box) {
    var tbody = q(box, '[data-edit="headers"]');
    var n = tbody.querySelectorAll('tr[data-added="true"]').length + 1;
    var tr = document.createElement("tr");
    tr.setAttribute("data-added", "true");
    tr.setAttribute("data-type", "string");
    tr.setAttribute("data-mode", "edit");
    var name = document.createElement("input");
    name.type = "text";
    name.setAttribute("data-edit", "name");
    name.setAttribute("aria-label", "Name of new header " + n);
    var value = document.createElement("input");
    value.type = "text";
    value.setAttribute("data-edit", "value");
    value.setAttribute("aria-label", "Value of new header " + n);
    var err = document.createElement("p");
    err.className = "field-error";
    err.setAttribute("role", "alert");
    err.hidden = true;
    var cells = [name, document.createTextNode("string"), value, null];
    cells.forEach(function (c, i) {
      var td = document.createElement("td");
      if (c) { td.appendChild(c); }
      if (i === 2) { td.appendChild(err); }
      if (i === 3) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "btn btn-small btn-secondary";
        b.setAttribute("data-edit-action", "remove");
        b.textContent = "Remove";
        td.appendChild(b);
      }
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    name.focus();
  }

  // startEdit wires the drawers' forms, those drawn with the page and
  // those fetched later, through events on the page's root.
  function startEdit(root) {
    root.addEventListener("click", function (ev) {
      var btn = ev.target && ev.target.closest ? ev.target.closest("[data-edit-action]") : null;
      var box = btn && btn.closest("[data-edit-form]");
      if (!box) { return; }
      ev.preventDefault();
      switch (btn.getAttribute("data-edit-action")) {
        case "remove": toggleRemove(btn); break;
        case "add-header": addHeader(box); break;
        case "preview": send(root, box, true); break;
        case "replay": send(root, box, false); break;
      }
    });
    // The drawers sit inside the page's form: Enter in one of their
    // inputs must not submit that form.
    root.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && ev.target && ev.target.tagName === "INPUT" && ev.target.closest("[data-edit-form]")) {
        ev.preventDefault();
      }
    });
    // A preview is of the form as it was: a change hides it.
    root.addEventListener("input", function (ev) {
      var box = ev.target && ev.target.closest ? ev.target.closest("[data-edit-form]") : null;
      if (box) { q(box, "[data-edit-plan]").hidden = true; }
    });
  }

  function start() {
    var root = document.getElementById("dlq");
    if (root) { startEdit(root); }
    if (!root || !window.SwitchboardLive) { return; }
    var tbody = document.getElementById("dlq-rows");
    var state = testid("dlq-live-state");
    var note = testid("dlq-notice");
    var watch = root.getAttribute("data-watch");
    var insert = root.getAttribute("data-rows") === "insert";
    var unseen = 0;

    function tell(text) {
      if (!note) { return; }
      note.querySelector("span").textContent = text;
      note.hidden = false;
    }

    tbody.addEventListener("click", onRowClick);
    // A drawer opened by its summary loads too ("toggle" does not bubble).
    tbody.addEventListener("toggle", function (ev) {
      if (ev.target && ev.target.open) { load(ev.target); }
    }, true);

    window.SwitchboardLive.open(root.getAttribute("data-ws"), {
      state: function (s) {
        if (state) { state.textContent = s === "live" ? "(live)" : "(" + s + ")"; }
        if (s === "live" && watch) { refreshPanel(); }
      },
      reset: function () {
        tell("The live stream restarted: some changes may be missing here.");
        if (watch) { refreshPanel(); }
      },
      message: function (type, data) {
        if (type === "message" && data && data.message) {
          var m = data.message;
          if (insert || testid("dlq-row-" + m.id)) {
            addRow(root, tbody, m);
          } else if (m.status === "dead" && !m.returned) {
            unseen++;
            tell(DLQ.notice(unseen));
          }
        } else if (type === "replay" && data && data.replay) {
          showHistory(data.replay);
          if (data.replay.id === watch) { showReplay(data.replay); }
        } else if (type === "discarded") {
          tell("Messages were discarded since this page was drawn.");
        }
      },
    });
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = DLQ;
  } else {
    window.SwitchboardDLQ = DLQ;
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start);
    } else {
      start();
    }
  }
})();
