// Table tools: counts, search and sorting for the tables that grow.
//
// A [data-table-tools="ID"] block (views.TableTools) above table#ID holds a
// hidden search box, which this script reveals: typing keeps the rows whose
// text holds every word typed, and the count ([data-count]) then reads
// "2 of 5 teams". Header cells with data-sort ("text", "number" or "time")
// of a table[data-sortable] become buttons that sort its rows, ascending
// then descending, and carry aria-sort. A cell sorts by its data-sort-value,
// else the datetime of a <time> in it, else its text. Rows added or removed
// later (htmx swaps, live updates that fire "tables:changed" on the table)
// are counted and filtered again. Without this script the tables are as the
// server sent them.
(function () {
  "use strict";

  // compare orders two sort values of a column of the given kind.
  function compare(a, b, kind) {
    if (kind === "number") {
      var x = parseFloat(a), y = parseFloat(b);
      if (isNaN(x) && isNaN(y)) { return 0; }
      if (isNaN(x)) { return 1; }
      if (isNaN(y)) { return -1; }
      return x - y;
    }
    if (kind === "time") {
      var s = Date.parse(a), t = Date.parse(b);
      if (isNaN(s) && isNaN(t)) { return 0; }
      if (isNaN(s)) { return 1; } // "never" sorts last
      if (isNaN(t)) { return -1; }
      return s - t;
    }
    return String(a).localeCompare(String(b), undefined, { sensitivity: "base", numeric: true });
  }

  // matches reports whether text holds every word of query (any case).
  function matches(text, query) {
    var words = String(query).toLowerCase().split(/\s+/).filter(Boolean);
    var hay = String(text).toLowerCase();
    for (var i = 0; i < words.length; i++) {
      if (hay.indexOf(words[i]) < 0) { return false; }
    }
    return true;
  }

  // countText says how many rows show: "3 teams", or "2 of 3 teams".
  function countText(shown, total, one, many) {
    var noun = total === 1 ? one : many;
    if (shown === total) { return total + " " + noun; }
    return shown + " of " + total + " " + noun;
  }

  var api = { compare: compare, matches: matches, countText: countText };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api; // for the tests under static/test
    return;
  }

  function rows(table) {
    var body = table.tBodies[0];
    return body ? Array.prototype.slice.call(body.rows) : [];
  }

  function sortValue(cell) {
    if (!cell) { return ""; }
    if (cell.hasAttribute("data-sort-value")) { return cell.getAttribute("data-sort-value"); }
    var t = cell.querySelector("time[datetime]");
    if (t) { return t.getAttribute("datetime"); }
    return cell.textContent.trim();
  }

  function refresh(tools) {
    var table = document.getElementById(tools.getAttribute("data-table-tools"));
    var box = tools.querySelector("[data-search-box]");
    if (box) { box.hidden = !table; } // nothing to search yet
    if (!table) { return; }
    var input = tools.querySelector("[data-filter]");
    var q = input ? input.value : "";
    var all = rows(table), shown = 0;
    all.forEach(function (r) {
      var keep = matches(r.textContent, q);
      r.hidden = !keep;
      if (keep) { shown++; }
    });
    var count = tools.querySelector("[data-count]");
    if (count) {
      count.textContent = countText(shown, all.length, tools.getAttribute("data-one") || "row", tools.getAttribute("data-many") || "rows");
    }
  }

  function bindTools(tools) {
    if (tools.getAttribute("data-tools-bound")) { return; }
    tools.setAttribute("data-tools-bound", "1");
    var input = tools.querySelector("[data-filter]");
    if (input) { input.addEventListener("input", function () { refresh(tools); }); }
    var table = document.getElementById(tools.getAttribute("data-table-tools"));
    if (table) { table.addEventListener("tables:changed", function () { refresh(tools); }); }
  }

  function bindSort(table) {
    if (table.getAttribute("data-sort-bound")) { return; }
    table.setAttribute("data-sort-bound", "1");
    var heads = table.querySelectorAll("thead th[data-sort]");
    heads.forEach(function (th) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort-button";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", dir);
        var col = Array.prototype.indexOf.call(th.parentNode.children, th);
        var kind = th.getAttribute("data-sort");
        var sign = dir === "ascending" ? 1 : -1;
        var body = table.tBodies[0];
        rows(table)
          .map(function (r, i) { return { r: r, v: sortValue(r.cells[col]), i: i }; })
          .sort(function (a, b) { return sign * compare(a.v, b.v, kind) || a.i - b.i; })
          .forEach(function (x) { body.appendChild(x.r); });
      });
    });
  }

  function bind(root) {
    if (!root || !root.querySelectorAll) { return; }
    root.querySelectorAll("[data-table-tools]").forEach(bindTools);
    root.querySelectorAll("table[data-sortable]").forEach(bindSort);
    document.querySelectorAll("[data-table-tools]").forEach(refresh);
  }

  document.addEventListener("DOMContentLoaded", function () { bind(document.body); });
  // htmx swapped rows in or out (a team changed, a token was revoked).
  document.addEventListener("htmx:afterSettle", function () { bind(document.body); });
})();
