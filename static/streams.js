// The live views of the event-stream pages. Every [data-tail] element
// follows the organisation's log over static/live.js from position
// data-from (and category data-category), each message one event, and
// every live part of the page updates from that one stream:
//   - the events table ([data-tail-body]): new events go on top (built with
//     textContent, never HTML); rows past data-max (0: no limit) drop off
//     the bottom. Events of other streams than data-stream (when set), at or
//     below data-after-version, or of another category than data-filter
//     (when set) are not added;
//   - the streams list (table[data-streams]): a listed stream's last
//     version and last write move; a stream not listed yet is added in name
//     order when it belongs on this page;
//   - a stream's summary ([data-summary]): its last version and last write;
//   - [data-tail-newer] (an older page of a stream) shows that newer events
//     exist.
// data-live reads connecting, live, reconnecting or closed. Data and
// metadata are pretty-printed from the message's own text, so numbers keep
// all their digits as the server's rendering does.
(function () {
  "use strict";
  var MAX_JSON = 65536;
  var SPACE = " \t\r\n";
  function skipSpace(s, i) {
    while (i < s.length && SPACE.indexOf(s.charAt(i)) >= 0) { i++; }
    return i;
  }
  function stringEnd(s, i) {
    for (i++; i < s.length; i++) {
      var c = s.charAt(i);
      if (c === "\\") { i++; } else if (c === "\"") { return i + 1; }
    }
    return i;
  }
  function valueEnd(s, i) {
    var depth = 0;
    while (i < s.length) {
      var c = s.charAt(i);
      if (c === "\"") {
        i = stringEnd(s, i);
        if (depth === 0) { return i; }
        continue;
      }
      if (c === "{" || c === "[") {
        depth++;
      } else if (c === "}" || c === "]") {
        if (depth === 0) { return i; }
        depth--;
        if (depth === 0) { return i + 1; }
      } else if (depth === 0 && (c === "," || SPACE.indexOf(c) >= 0)) {
        return i;
      }
      i++;
    }
    return i;
  }
  // members maps each member of the JSON object text s to its raw text.
  function members(s) {
    var out = {};
    var i = skipSpace(s, 0);
    if (s.charAt(i) !== "{") { return out; }
    i++;
    for (;;) {
      i = skipSpace(s, i);
      if (s.charAt(i) !== "\"") { return out; }
      var k = stringEnd(s, i);
      var key = JSON.parse(s.slice(i, k));
      i = skipSpace(s, k);
      if (s.charAt(i) !== ":") { return out; }
      i = skipSpace(s, i + 1);
      var e = valueEnd(s, i);
      out[key] = s.slice(i, e);
      i = skipSpace(s, e);
      if (s.charAt(i) !== ",") { return out; }
      i++;
    }
  }
  // pretty indents JSON text by two spaces, as Go's json.Indent does.
  function pretty(s) {
    var out = "", depth = 0, i = 0;
    function newline() { return "\n" + new Array(depth + 1).join("  "); }
    while (i < s.length) {
      var c = s.charAt(i);
      if (c === "\"") {
        var e = stringEnd(s, i);
        out += s.slice(i, e);
        i = e;
        continue;
      }
      if (c === "{" || c === "[") {
        var j = skipSpace(s, i + 1);
        if (s.charAt(j) === (c === "{" ? "}" : "]")) {
          out += c + s.charAt(j);
          i = j + 1;
          continue;
        }
        depth++;
        out += c + newline();
      } else if (c === "}" || c === "]") {
        depth--;
        out += newline() + c;
      } else if (c === ",") {
        out += "," + newline();
      } else if (c === ":") {
        out += ": ";
      } else if (SPACE.indexOf(c) < 0) {
        out += c;
      }
      i++;
    }
    if (out.length > MAX_JSON) {
      out = out.slice(0, MAX_JSON) + "\n… (cut; read the event through the API)";
    }
    return out;
  }
  function el(tag, text) {
    var e = document.createElement(tag);
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function cell(tr, child) {
    var td = el("td");
    td.appendChild(child);
    tr.appendChild(td);
    return td;
  }
  function stamp(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return String(iso); }
    return d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function body(label, raw) {
    var d = el("details");
    d.appendChild(el("summary", label));
    var pre = el("pre", pretty(raw));
    pre.className = "json-pre";
    d.appendChild(pre);
    return d;
  }
  function row(root, ev, raw) {
    var tr = el("tr");
    tr.setAttribute("data-position", String(ev.position));
    tr.setAttribute("data-version", String(ev.version));
    cell(tr, document.createTextNode(String(ev.position)));
    if (root.hasAttribute("data-show-stream")) {
      var a = el("a");
      a.href = root.getAttribute("data-stream-base") + encodeURIComponent(ev.stream);
      a.appendChild(el("code", ev.stream));
      cell(tr, a);
    }
    cell(tr, el("code", ev.type));
    cell(tr, document.createTextNode(String(ev.version)));
    var t = el("time", stamp(ev.created_at));
    t.setAttribute("datetime", String(ev.created_at));
    cell(tr, t);
    var td = cell(tr, body("data", raw.data || "null"));
    if (raw.metadata && raw.metadata !== "null") { td.appendChild(body("metadata", raw.metadata)); }
    return tr;
  }
  // categoryOf is the category of a stream, as the server computes it:
  // the part of the name before the first "-", or the whole name.
  function categoryOf(stream) {
    var i = stream.indexOf("-");
    return i > 0 ? stream.slice(0, i) : stream;
  }
  function timeEl(iso) {
    var t = el("time", stamp(iso));
    t.setAttribute("datetime", String(iso));
    return t;
  }
  function setCell(td, node) {
    while (td.firstChild) { td.removeChild(td.firstChild); }
    td.appendChild(node);
  }
  // The streams list: move a listed stream on, or add a new one where it
  // belongs in name order (if it belongs on this page at all).
  function updateList(table, ev) {
    var body = table.querySelector("[data-streams-body]");
    if (!body) { return; }
    var rows = Array.prototype.slice.call(body.rows);
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-stream") === ev.stream) {
        var v = rows[i].querySelector('[data-cell="version"]');
        if (v && !(parseInt(v.textContent, 10) >= ev.version)) { v.textContent = String(ev.version); }
        var w = rows[i].querySelector('[data-cell="last-write"]');
        if (w) { setCell(w, timeEl(ev.created_at)); }
        return;
      }
    }
    var first = table.getAttribute("data-first-page") === "true";
    var more = table.getAttribute("data-has-next") === "true";
    var before = null;
    for (var j = 0; j < rows.length; j++) {
      if (rows[j].getAttribute("data-stream") > ev.stream) { before = rows[j]; break; }
    }
    if ((before === rows[0] && rows.length > 0 && !first) || (before === null && more)) {
      return; // it sorts onto another page
    }
    var tr = el("tr");
    tr.setAttribute("data-stream", ev.stream);
    var a = el("a");
    a.href = table.getAttribute("data-stream-base") + encodeURIComponent(ev.stream);
    a.appendChild(el("code", ev.stream));
    cell(tr, a);
    cell(tr, el("code", categoryOf(ev.stream)));
    cell(tr, document.createTextNode(String(ev.version))).setAttribute("data-cell", "version");
    cell(tr, timeEl(ev.created_at)).setAttribute("data-cell", "last-write");
    body.insertBefore(tr, before);
    var list = document.querySelector("[data-streams-list]");
    if (list) { list.hidden = false; }
    var empty = document.querySelector("[data-streams-empty]");
    if (empty) { empty.hidden = true; }
    table.dispatchEvent(new CustomEvent("tables:changed"));
  }
  function updateSummary(ev) {
    var v = document.querySelector('[data-summary="version"]');
    if (v && !(parseInt(v.textContent, 10) >= ev.version)) { v.textContent = String(ev.version); }
    var w = document.querySelector('[data-summary="last-write"]');
    if (w) { setCell(w, timeEl(ev.created_at)); }
  }
  function tail(root) {
    if (root.getAttribute("data-tail-bound")) { return; }
    root.setAttribute("data-tail-bound", "1");
    var tbody = root.querySelector("[data-tail-body]");
    var table = tbody ? tbody.closest("table") : null;
    var empty = root.querySelector("[data-tail-empty]");
    var newer = root.querySelector("[data-tail-newer]");
    var state = root.querySelector("[data-live-state]");
    var path = root.getAttribute("data-ws");
    var category = root.getAttribute("data-category") || "";
    var filter = root.getAttribute("data-filter") || "";
    var only = root.getAttribute("data-stream") || "";
    var next = parseInt(root.getAttribute("data-from"), 10) || 0;
    var after = parseInt(root.getAttribute("data-after-version"), 10);
    var max = parseInt(root.getAttribute("data-max"), 10) || 0;
    if (isNaN(after)) { after = -1; }
    function show(s) {
      root.setAttribute("data-live", s);
      if (state) { state.textContent = s; }
    }
    function add(text) {
      // The event is the message's data; it is read from the message's own
      // text so numbers keep all their digits.
      var eventText = members(text).data;
      if (!eventText) { return; }
      var ev;
      try { ev = JSON.parse(eventText); } catch (e) { return; }
      if (!ev || typeof ev.position !== "number" || typeof ev.stream !== "string") { return; }
      if (ev.position < next) { return; }
      next = ev.position + 1;
      document.querySelectorAll("table[data-streams]").forEach(function (t) { updateList(t, ev); });
      if (only) {
        if (ev.stream !== only || ev.version <= after) { return; }
        after = ev.version;
        updateSummary(ev);
      }
      if (filter && categoryOf(ev.stream) !== filter) { return; }
      if (!tbody) {
        if (newer) { newer.hidden = false; }
        return;
      }
      tbody.insertBefore(row(root, ev, members(eventText)), tbody.firstChild);
      while (max > 0 && tbody.rows.length > max) { tbody.deleteRow(-1); }
      if (table) { table.hidden = false; }
      if (empty) { empty.hidden = true; }
    }
    window.SwitchboardLive.open(path, {
      query: function () {
        var q = "from_position=" + next;
        if (category) { q += "&category=" + encodeURIComponent(category); }
        return q;
      },
      state: function (s, reason) { show(s === "closed" && reason ? "closed: " + reason : s); },
      message: function (type, data, seq, text) { if (type === "event") { add(text); } }
    });
  }
  if (typeof module !== "undefined" && module.exports) {
    // For the tests under static/test: the parts that need no page.
    module.exports = { members: members, pretty: pretty, categoryOf: categoryOf, stamp: stamp };
    return;
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tail]").forEach(tail);
  });
})();
