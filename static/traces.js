// The tracing pages (views/traces.templ).
//
// The live tail (#trace-tail) follows the tail's stream (data-ws, through
// live.js) with the filter form's values: spans appear newest first, error
// spans highlighted, at most MAX_ROWS kept; the filters in use show as
// chips (× removes one); Pause holds new spans back and counts them, Resume
// shows them; what the server skipped because the page fell behind is
// said, never silently dropped. A row opens its trace.
//
// A trace's page (#waterfall): ▾ folds a span's subtree; clicking a span
// fills the details panel from the server (the link's ?span= page without
// the script) and keeps ?span= in the address.
(function () {
  "use strict";

  var MAX_ROWS = 500;
  var FILTERS = ["service", "operation", "status", "min_duration", "max_duration", "attr"];

  function duration(ns) {
    if (ns < 1e6) { return Math.floor(ns / 1e3) + "\u00b5s"; }
    if (ns < 1e9) { return (ns / 1e6).toFixed(1) + "ms"; }
    if (ns < 6e10) { return (ns / 1e9).toFixed(2) + "s"; }
    return Math.round(ns / 1e9) + "s";
  }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso; }
    function pad(n, w) { n = String(n); while (n.length < w) { n = "0" + n; } return n; }
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) + "." + pad(d.getMilliseconds(), 3);
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function startTail(root) {
    var form = root.querySelector("#tail-filter");
    var chips = root.querySelector('[data-testid="tail-chips"]');
    var body = root.querySelector('[data-testid="tail-rows"]');
    var pauseBtn = root.querySelector('[data-action="pause"]');
    var clearBtn = root.querySelector('[data-action="clear"]');
    var stateEl = root.querySelector('[data-testid="tail-state"]');
    var countEl = root.querySelector('[data-testid="tail-count"]');
    var skippedEl = root.querySelector('[data-testid="tail-skipped"]');
    var traces = root.getAttribute("data-traces");
    var filters = {};
    var stream = null;
    var paused = false, held = [], heldDropped = 0, skipped = 0, shown = 0;

    function query() {
      var parts = [];
      FILTERS.forEach(function (k) {
        if (filters[k]) { parts.push(k + "=" + encodeURIComponent(filters[k])); }
      });
      return parts.join("&");
    }

    function readForm() {
      var f = {};
      FILTERS.forEach(function (k) {
        var el = form.elements.namedItem(k);
        var v = el ? String(el.value || "").trim() : "";
        if (v) { f[k] = v; }
      });
      return f;
    }

    function drawChips() {
      chips.textContent = "";
      FILTERS.forEach(function (k) {
        if (!filters[k]) { return; }
        var li = document.createElement("li");
        li.setAttribute("data-filter", k);
        li.appendChild(document.createTextNode(k + "=" + filters[k]));
        var x = document.createElement("button");
        x.type = "button";
        x.className = "chip-remove";
        x.setAttribute("data-remove", k);
        x.setAttribute("aria-label", "Remove the filter " + k);
        x.textContent = "\u00d7";
        li.appendChild(x);
        chips.appendChild(li);
      });
    }

    function setState(s, reason) {
      stateEl.textContent = "(" + s + (reason ? ": " + reason : "") + ")";
      root.setAttribute("data-state", s);
    }

    function counts() {
      countEl.textContent = shown + (shown === 1 ? " span shown" : " spans shown");
      skippedEl.textContent = skipped ? skipped + " skipped: they arrived faster than this page can show them" : "";
      pauseBtn.textContent = paused ? "Resume" + (held.length ? " (" + (held.length + heldDropped) + " new)" : "") : "Pause";
    }

    function rowOf(s) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-trace", s.trace_id);
      tr.setAttribute("data-span", s.span_id);
      if (s.status === "error") { tr.className = "tail-error"; }
      var t = cell(tr, clock(s.start));
      t.title = s.start;
      cell(tr, s.service);
      var name = cell(tr, s.name);
      if (s.status_message) { name.title = s.status_message; }
      cell(tr, s.kind);
      cell(tr, duration(s.duration_ns));
      cell(tr, s.status, s.status === "error" ? "state-down" : "");
      var td = document.createElement("td");
      var a = document.createElement("a");
      a.href = traces + "/" + encodeURIComponent(s.trace_id) + "?span=" + encodeURIComponent(s.span_id);
      a.textContent = s.trace_id.slice(0, 8);
      a.setAttribute("aria-label", "Open trace " + s.trace_id);
      td.appendChild(a);
      tr.appendChild(td);
      return tr;
    }

    function show(spans) {
      var waiting = body.querySelector(".tail-waiting");
      if (waiting && spans.length) { waiting.remove(); }
      var frag = document.createDocumentFragment();
      // Newest first: the batch's last span goes on top.
      for (var i = spans.length - 1; i >= 0; i--) { frag.appendChild(rowOf(spans[i])); }
      body.insertBefore(frag, body.firstChild);
      shown += spans.length;
      while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
      clearBtn.disabled = false;
    }

    function onSpans(data) {
      var spans = (data && data.spans) || [];
      if (data && data.skipped) { skipped += data.skipped; }
      if (paused) {
        spans.forEach(function (s) { held.push(s); });
        if (held.length > MAX_ROWS) { heldDropped += held.length - MAX_ROWS; held = held.slice(held.length - MAX_ROWS); }
      } else {
        show(spans);
      }
      counts();
    }

    function connect() {
      if (stream) { stream.close(); }
      stream = window.SwitchboardLive.open(root.getAttribute("data-ws"), {
        query: query,
        state: setState,
        message: function (type, data) { if (type === "spans") { onSpans(data); } }
      });
    }

    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      filters = readForm();
      drawChips();
      connect();
    });
    chips.addEventListener("click", function (evt) {
      var b = evt.target.closest("[data-remove]");
      if (!b) { return; }
      var k = b.getAttribute("data-remove");
      delete filters[k];
      var el = form.elements.namedItem(k);
      if (el) { el.value = ""; }
      drawChips();
      connect();
    });
    pauseBtn.addEventListener("click", function () {
      paused = !paused;
      if (!paused && held.length) {
        show(held);
        skipped += heldDropped;
        held = [];
        heldDropped = 0;
      }
      counts();
    });
    clearBtn.addEventListener("click", function () {
      body.textContent = "";
      shown = 0;
      skipped = 0;
      clearBtn.disabled = true;
      counts();
    });
    body.addEventListener("click", function (evt) {
      if (evt.target.closest("a")) { return; }
      var tr = evt.target.closest("tr[data-trace]");
      if (tr) { window.location.assign(tr.querySelector("a").href); }
    });
    pauseBtn.disabled = false;
    counts();
    connect();
  }

  function startWaterfall(root) {
    var panel = document.getElementById("span-panel");
    var base = root.getAttribute("data-trace");
    var loading = null;

    // fold hides (or shows) the rows under row: the following rows deeper
    // than it. Unfolding keeps folded subtrees below folded.
    function fold(row, open) {
      var depth = +row.getAttribute("data-depth");
      var hideBelow = Infinity;
      for (var r = row.nextElementSibling; r && +r.getAttribute("data-depth") > depth; r = r.nextElementSibling) {
        var d = +r.getAttribute("data-depth");
        if (!open) { r.hidden = true; continue; }
        if (d > hideBelow) { continue; }
        hideBelow = Infinity;
        r.hidden = false;
        var b = r.querySelector('[data-action="fold"]');
        if (b && b.getAttribute("aria-expanded") === "false") { hideBelow = d; }
      }
      row.querySelector('[data-action="fold"]').setAttribute("aria-expanded", open ? "true" : "false");
    }

    function select(row) {
      var id = row.getAttribute("data-span");
      root.querySelectorAll("tr[aria-selected]").forEach(function (r) { r.removeAttribute("aria-selected"); });
      row.setAttribute("aria-selected", "true");
      history.replaceState(null, "", base + "?span=" + encodeURIComponent(id));
      if (loading) { loading.abort(); }
      loading = new AbortController();
      panel.setAttribute("aria-busy", "true");
      fetch(base + "/spans/" + encodeURIComponent(id), { credentials: "same-origin", signal: loading.signal })
        .then(function (r) {
          if (r.redirected || (r.headers.get("Content-Type") || "").indexOf("text/html") < 0) {
            // The sign-in page instead of the details: the session ended.
            throw new Error("the session ended; reload to sign in again");
          }
          if (!r.ok) { throw new Error("the server answered " + r.status); }
          return r.text();
        })
        .then(function (html) {
          panel.innerHTML = html; // the server's own rendering, escaped by it
        })
        .catch(function (err) {
          if (err.name === "AbortError") { return; }
          panel.textContent = "The span's details could not be loaded: " + err.message;
        })
        .then(function () { panel.removeAttribute("aria-busy"); });
    }

    root.addEventListener("click", function (evt) {
      var b = evt.target.closest("[data-action]");
      var row = evt.target.closest("tr[data-span]");
      if (!row) { return; }
      if (b && b.getAttribute("data-action") === "fold") {
        fold(row, b.getAttribute("aria-expanded") === "false");
        return;
      }
      if (evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.button !== 0) { return; }
      evt.preventDefault();
      select(row);
    });
    var sel = root.querySelector("tr[aria-selected]");
    if (sel) { sel.scrollIntoView({ block: "center" }); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tail = document.getElementById("trace-tail");
    if (tail && window.SwitchboardLive) { startTail(tail); }
    var wf = document.getElementById("waterfall");
    if (wf) { startWaterfall(wf); }
  });
})();
