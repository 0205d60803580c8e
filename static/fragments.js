// Live fragments (the "Locks & elections" and "Key-value" pages): every
// [data-ws] element, now and in content htmx adds later, follows its stream
// over static/live.js, and on each message (at most one reload per 150 ms)
// and on each (re)connection reloads data-refresh into data-target.
// data-live reads connecting, on, reconnecting or closed. Each reload names
// the highest index (the stream's seq: a revision of the organisation's
// coordination state) the stream has reported, so the node that serves it
// (maybe not the stream's) waits until it has applied that change.
// Elements that left the page close their stream.
(function () {
  "use strict";
  var bound = [];

  function attached(el) { return document.body.contains(el); }

  function live(el) {
    if (el.getAttribute("data-ws-bound")) { return; }
    el.setAttribute("data-ws-bound", "1");
    var entry = { el: el, conn: null };
    bound.push(entry);
    var state = el.querySelector("[data-live-state]");
    var timer = null;
    var index = 0;
    function show(s) {
      el.setAttribute("data-live", s);
      if (state) { state.textContent = s; }
    }
    function refresh() {
      if (timer) { return; }
      timer = setTimeout(function () {
        timer = null;
        if (window.htmx && attached(el)) {
          var url = el.getAttribute("data-refresh");
          if (index > 0) { url += (url.indexOf("?") < 0 ? "?" : "&") + "index=" + index; }
          window.htmx.ajax("GET", url, { target: el.getAttribute("data-target"), swap: "innerHTML" });
        }
      }, 150);
    }
    entry.conn = window.SwitchboardLive.open(el.getAttribute("data-ws"), {
      state: function (s, reason) {
        if (s === "live") {
          show("on");
          // What changed between the page's rendering and now.
          refresh();
          return;
        }
        show(s === "closed" && reason ? "closed: " + reason : s);
      },
      message: function (type, data, seq) {
        if (!attached(el)) { entry.conn.close(); return; }
        if (seq > index) { index = seq; }
        refresh();
      },
      reset: refresh
    });
  }

  function bind(root) {
    bound = bound.filter(function (b) {
      if (attached(b.el)) { return true; }
      if (b.conn) { b.conn.close(); }
      return false;
    });
    if (!root || !root.querySelectorAll) { return; }
    if (root.matches && root.matches("[data-ws]")) { live(root); }
    root.querySelectorAll("[data-ws]").forEach(live);
  }

  document.addEventListener("DOMContentLoaded", function () { bind(document.body); });
  document.addEventListener("htmx:load", function (evt) { bind((evt.detail && evt.detail.elt) || evt.target); });
})();
