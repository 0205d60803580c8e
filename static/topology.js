// The topology page: the organisation's catalog as a graph, drawn by
// Cytoscape.js on one canvas (no element per node) and laid out in layers
// by dagre. The page ([data-testid=topology], see views/topology.templ)
// names its routes in data attributes:
//   data-json      the graph (GET, the filters as query parameters)
//   data-ws        the catalog's live stream (static/live.js): each change
//                  refetches the graph and patches it in place
//   data-relate, data-unrelate  POST {"from","type","to"} (JSON, with the
//                  page's CSRF token) to draw or delete a relation
//   data-views     POST {"name","state"} to save the view (filters and
//                  node positions), opened again by ?view=<id>
//   data-view-state the saved view the page opened with, if any
// Every node and every relation is also listed in two tables under a
// <details> (built when it is open), so the graph can be read and edited
// without the canvas. When a layout is done, body[data-graph-ready] holds
// the number of nodes drawn.
(function () {
  "use strict";

  // Colours by status; the legend on the page names them.
  var STATUS_COLORS = {
    ok: "#2f9e44",
    warning: "#f08c00",
    down: "#e03131",
    missing: "#adb5bd",
    orphaned: "#9c36b5"
  };
  var DEAD_LETTER_COLOR = "#c92a2a";
  var EDGE_COLOR = "#868e96";
  var SHAPES = {
    service: "round-rectangle",
    broker: "hexagon",
    queue: "barrel",
    topic: "rhomboid",
    saga: "diamond"
  };
  var FILTERS = ["owner_team", "labels", "kind", "q", "around", "depth", "traced_since"];
  var UNDECLARED_COLOR = "#e8590c";
  // With traffic on, the graph is fetched again this often (ms): the
  // figures move without catalog changes.
  var TRAFFIC_REFRESH = 15000;
  // Above this many nodes the layout is layers (below) instead of dagre,
  // and edges are drawn straight (haystack), the cheapest to draw.
  var LARGE = 250;

  function statusColor(status) {
    return STATUS_COLORS[status] || STATUS_COLORS.ok;
  }

  function shapeOf(kind) {
    return SHAPES[kind] || "ellipse";
  }

  // problemCodes lists a node's problem codes, for its label and the lists.
  function problemCodes(n) {
    var out = [];
    (n.problems || []).forEach(function (p) {
      if (p && p.code && out.indexOf(p.code) < 0) { out.push(p.code); }
    });
    return out;
  }

  function edgeKey(e) {
    return (e.declared === false ? "u|" : e.derived ? "d|" : "r|") + e.from + "|" + e.type + "|" + e.to;
  }

  // rate writes a rate a second: 0.05/s, 3.4/s, 120/s.
  function rate(r) {
    r = +r || 0;
    return (r >= 100 ? Math.round(r) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + "/s";
  }

  // traffic writes what spans showed of a node or an edge.
  function traffic(t) {
    if (!t) { return ""; }
    var pct = t.count ? Math.round(t.errors * 1000 / t.count) / 10 : 0;
    return rate(t.rate) + ", " + t.count + " in the window, " + t.errors + " errors (" + pct + "%), p50 " +
      (+t.p50_ms).toFixed(1) + " ms, p99 " + (+t.p99_ms).toFixed(1) + " ms";
  }

  // trafficLabel is the short line drawn under a node or on an edge.
  function trafficLabel(t, withLatency) {
    if (!t) { return ""; }
    var s = rate(t.rate);
    if (t.errors) { s += " \u2717" + (t.count ? Math.round(t.errors * 100 / t.count) : 0) + "%"; }
    if (withLatency) { s += " p99 " + Math.round(t.p99_ms) + "ms"; }
    return s;
  }

  // refName reads "kind:name" or "kind:namespace/name".
  function refParts(ref) {
    var i = ref.indexOf(":");
    if (i < 0) { return { kind: "unknown", namespace: "default", name: ref }; }
    var rest = ref.slice(i + 1), ns = "default", j = rest.indexOf("/");
    if (j >= 0) { ns = rest.slice(0, j); rest = rest.slice(j + 1); }
    return { kind: ref.slice(0, i), namespace: ns, name: rest };
  }

  function nodeData(n) {
    var codes = problemCodes(n);
    var label = (codes.length ? "\u26a0 " : "") + (n.name || n.id);
    if (typeof n.dead_letters === "number") { label += "\n\u2709 " + n.dead_letters + " dead"; }
    if (n.traced) { label += "\n" + trafficLabel(n.traced, true); }
    return {
      id: n.id,
      label: label,
      traced: n.traced || null,
      deadLetters: typeof n.dead_letters === "number" ? n.dead_letters : null,
      kind: n.kind || "",
      name: n.name || "",
      namespace: n.namespace || "default",
      owner: n.owner_team || "",
      status: n.status || "ok",
      color: statusColor(n.status),
      shape: shapeOf(n.kind),
      problems: codes.join(" "),
      problemCount: codes.length,
      labels: n.labels || {},
      details: n.problems || []
    };
  }

  // elementsFrom turns the topology JSON into Cytoscape elements. No edge
  // is dropped: an edge whose end is not among the nodes gets a "missing"
  // node, and two edges with the same key both stay (the second gets a
  // suffix).
  function elementsFrom(t) {
    var nodes = [], edges = [], seen = {}, ids = {};
    (t.nodes || []).forEach(function (n) {
      if (!n || typeof n.id !== "string" || seen[n.id]) { return; }
      seen[n.id] = true;
      nodes.push({ group: "nodes", data: nodeData(n), classes: nodeClasses(n) });
    });
    (t.edges || []).forEach(function (e) {
      if (!e || typeof e.from !== "string" || typeof e.to !== "string") { return; }
      [e.from, e.to].forEach(function (ref) {
        if (seen[ref]) { return; }
        seen[ref] = true;
        var p = refParts(ref);
        var m = { id: ref, kind: p.kind, name: p.name, namespace: p.namespace, status: "missing",
          problems: [{ code: "missing", message: "referred to, but not in the catalog" }] };
        nodes.push({ group: "nodes", data: nodeData(m), classes: nodeClasses(m) });
      });
      var id = edgeKey(e), k = id, i = 1;
      while (ids[id]) { id = k + "#" + (++i); }
      ids[id] = true;
      edges.push({ group: "edges", data: { id: id, source: e.from, target: e.to, type: e.type, derived: !!e.derived,
        undeclared: e.declared === false, silent: !!e.silent, traced: e.traced || null,
        label: e.traced ? trafficLabel(e.traced, false) : e.declared === false ? "undeclared" : "" },
        classes: edgeClasses(e) });
    });
    return { nodes: nodes, edges: edges };
  }

  function nodeClasses(n) {
    var c = ["status-" + (n.status || "ok")];
    var codes = problemCodes(n);
    if (codes.length) { c.push("has-problems"); }
    // Drift (the broker holds something else than declared) is marked
    // apart from other problems: the catalog, not the service, is wrong.
    if (codes.indexOf("drift") >= 0) { c.push("has-drift"); }
    return c.join(" ");
  }

  function edgeClasses(e) {
    var c = [];
    if (e.type === "dead_letters_to") { c.push("dead-letter"); }
    if (e.derived) { c.push("derived"); }
    if (e.declared === false) { c.push("undeclared"); }
    if (e.silent) { c.push("silent"); }
    if (e.traced) { c.push("traced"); }
    return c.join(" ");
  }

  // filterQuery writes filters as the JSON route's query string, in a fixed
  // order, leaving out empty ones.
  function filterQuery(f) {
    var parts = [];
    FILTERS.forEach(function (k) {
      var v = f && f[k] != null ? String(f[k]).trim() : "";
      if (v) { parts.push(k + "=" + encodeURIComponent(v)); }
    });
    return parts.join("&");
  }

  // filtersFromQuery reads the filters out of a query string ("?a=b&c=d").
  function filtersFromQuery(search) {
    var f = {};
    String(search || "").replace(/^\?/, "").split("&").forEach(function (pair) {
      if (!pair) { return; }
      var i = pair.indexOf("="), k = i < 0 ? pair : pair.slice(0, i);
      var v = i < 0 ? "" : pair.slice(i + 1);
      k = decodeURIComponent(k.replace(/\+/g, " "));
      if (FILTERS.indexOf(k) >= 0) { f[k] = decodeURIComponent(v.replace(/\+/g, " ")); }
    });
    return f;
  }

  // diff says how to turn the drawn graph (ids: the ids of its elements)
  // into els: which to add, which to remove, which to update in place.
  function diff(ids, els) {
    var want = {}, add = [], update = [], remove = [];
    els.nodes.concat(els.edges).forEach(function (el) {
      want[el.data.id] = true;
      if (ids[el.data.id]) { update.push(el); } else { add.push(el); }
    });
    Object.keys(ids).forEach(function (id) { if (!want[id]) { remove.push(id); } });
    return { add: add, update: update, remove: remove };
  }

  function stylesheet() {
    return [
      { selector: "node", style: {
        "shape": "data(shape)", "background-color": "data(color)", "label": "data(label)",
        "font-size": 11, "color": "#212529", "text-valign": "bottom", "text-margin-y": 4,
        "width": 26, "height": 26, "min-zoomed-font-size": 7, "text-wrap": "wrap",
        "border-width": 1, "border-color": "#495057" } },
      { selector: "node.has-problems", style: { "border-width": 3, "border-color": DEAD_LETTER_COLOR } },
      { selector: "node.has-drift", style: { "border-style": "double", "border-width": 5, "border-color": "#7048e8" } },
      { selector: "node.status-missing", style: { "border-style": "dashed", "background-opacity": 0.5 } },
      { selector: "node:selected", style: { "overlay-color": "#1971c2", "overlay-opacity": 0.25, "overlay-padding": 6 } },
      { selector: "node.picked", style: { "overlay-color": "#1971c2", "overlay-opacity": 0.4, "overlay-padding": 8 } },
      { selector: "edge", style: {
        "width": 1.5, "line-color": EDGE_COLOR, "target-arrow-color": EDGE_COLOR,
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8 } },
      { selector: "edge.dead-letter", style: {
        "line-style": "dashed", "line-color": DEAD_LETTER_COLOR, "target-arrow-color": DEAD_LETTER_COLOR, "width": 2 } },
      { selector: "edge.derived", style: { "line-dash-pattern": [6, 3] } },
      { selector: "edge.traced", style: { "label": "data(label)", "font-size": 9, "color": "#495057", "text-rotation": "autorotate",
        "text-background-color": "#ffffff", "text-background-opacity": 0.8, "text-background-padding": 1, "min-zoomed-font-size": 6 } },
      { selector: "edge.undeclared", style: { "line-style": "dotted", "line-color": UNDECLARED_COLOR, "target-arrow-color": UNDECLARED_COLOR,
        "width": 2.5, "label": "data(label)", "font-size": 9, "color": UNDECLARED_COLOR, "text-rotation": "autorotate" } },
      { selector: "edge.silent", style: { "opacity": 0.35, "line-style": "dashed", "line-dash-pattern": [2, 6] } },
      { selector: "edge:selected", style: { "width": 4, "line-color": "#1971c2", "target-arrow-color": "#1971c2" } }
    ];
  }

  // layers places nodes in layers, left to right, as dagre does but in
  // linear time per pass, for graphs too large for dagre to lay out in
  // time (dagre needs seconds from a few hundred nodes on): cycles are
  // broken where a depth-first walk finds them, each node goes one layer
  // right of its furthest predecessor, and a few sweeps order each layer
  // by the mean position of its neighbours to shorten edges. ids are the
  // node ids, edges [from, to] pairs; the answer maps each id to {x, y}.
  function layers(ids, edges, sweeps) {
    var index = {}, n = ids.length, i;
    for (i = 0; i < n; i++) { index[ids[i]] = i; }
    var out = [], inn = [];
    for (i = 0; i < n; i++) { out.push([]); inn.push([]); }
    edges.forEach(function (e) {
      var a = index[e[0]], b = index[e[1]];
      if (a === undefined || b === undefined || a === b) { return; }
      out[a].push(b);
    });
    // Depth-first walk without recursion: an edge back to a node on the
    // walk's path closes a cycle and is left out of the ranking.
    var state = new Uint8Array(n), fwd = [];
    for (i = 0; i < n; i++) { fwd.push([]); }
    for (var root = 0; root < n; root++) {
      if (state[root]) { continue; }
      var stack = [root], pos = [0];
      state[root] = 1;
      while (stack.length) {
        var v = stack[stack.length - 1], k = pos[pos.length - 1];
        if (k < out[v].length) {
          pos[pos.length - 1] = k + 1;
          var w = out[v][k];
          if (state[w] === 1) { continue; } // a back edge
          fwd[v].push(w);
          inn[w].push(v);
          if (!state[w]) { state[w] = 1; stack.push(w); pos.push(0); }
        } else {
          state[v] = 2;
          stack.pop();
          pos.pop();
        }
      }
    }
    // Longest path from the sources, in topological order (Kahn).
    var rank = new Int32Array(n), deg = new Int32Array(n), queue = [];
    for (i = 0; i < n; i++) { deg[i] = inn[i].length; if (!deg[i]) { queue.push(i); } }
    for (var q = 0; q < queue.length; q++) {
      var u = queue[q];
      fwd[u].forEach(function (x) {
        if (rank[u] + 1 > rank[x]) { rank[x] = rank[u] + 1; }
        if (--deg[x] === 0) { queue.push(x); }
      });
    }
    var byRank = [];
    for (i = 0; i < n; i++) {
      if (!byRank[rank[i]]) { byRank[rank[i]] = []; }
      byRank[rank[i]].push(i);
    }
    var order = new Float64Array(n);
    byRank.forEach(function (l) { l.forEach(function (v, j) { order[v] = j; }); });
    function sweep(list, nb) {
      var bary = {};
      list.forEach(function (v) {
        var s = 0, c = 0;
        nb[v].forEach(function (x) { s += order[x]; c++; });
        bary[v] = c ? s / c : order[v];
      });
      list.sort(function (a, b) { return bary[a] - bary[b] || a - b; });
      list.forEach(function (v, j) { order[v] = j; });
    }
    for (var s = 0; s < (sweeps || 4); s++) {
      var r;
      for (r = 1; r < byRank.length; r++) { sweep(byRank[r], inn); }
      for (r = byRank.length - 2; r >= 0; r--) { sweep(byRank[r], fwd); }
    }
    var at = {};
    byRank.forEach(function (l, r) {
      l.forEach(function (v, j) { at[ids[v]] = { x: r * 180, y: (j - (l.length - 1) / 2) * 44 }; });
    });
    return at;
  }

  // layoutOptions picks the layout: the saved positions when every node has
  // one; dagre in layers for a graph it lays out quickly; above LARGE
  // nodes, the same layered picture from layers (placed is its answer).
  function layoutOptions(count, positions, allPlaced, placed) {
    if (allPlaced || placed) {
      var at = allPlaced ? positions : placed;
      return { name: "preset", positions: function (n) { return at[n.id()]; }, fit: true, padding: 20, animate: false };
    }
    return { name: "dagre", rankDir: "LR", nodeSep: 12, edgeSep: 6, rankSep: 90, fit: true, padding: 20, animate: false };
  }

  if (typeof module !== "undefined" && module.exports) {
    // For the tests under static/test: the parts that need no page.
    module.exports = { statusColor: statusColor, shapeOf: shapeOf, elementsFrom: elementsFrom, filterQuery: filterQuery,
      filtersFromQuery: filtersFromQuery, diff: diff, edgeKey: edgeKey, refParts: refParts, nodeClasses: nodeClasses,
      edgeClasses: edgeClasses, layoutOptions: layoutOptions, layers: layers, stylesheet: stylesheet, STATUS_COLORS: STATUS_COLORS };
    return;
  }

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function postJSON(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 204) { return {}; }
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (!r.ok) { throw new Error((b && b.detail) || ("the server answered " + r.status)); }
        return b;
      });
    });
  }

  function text(el, s) { if (el) { el.textContent = s; } }

  function start(root) {
    var container = root.querySelector("#topology-canvas");
    var countEl = root.querySelector("[data-topology-count]");
    var errorEl = root.querySelector("[data-topology-error]");
    var liveEl = root.querySelector("[data-live-state]");
    var filterForm = root.querySelector("#topology-filter");
    var relateForm = root.querySelector("#topology-relate");
    var viewForm = root.querySelector("#topology-save-view");
    var lists = root.querySelector("#topology-lists");
    var panel = root.querySelector("#topology-panel");
    var canEdit = root.getAttribute("data-can-edit") === "true";
    var pickState = root.querySelector("[data-pick-state]");
    var positions = {};
    var filters = filtersFromQuery(location.search);
    var viewState = root.getAttribute("data-view-state");
    if (viewState) {
      try {
        var vs = JSON.parse(viewState);
        if (vs && vs.filters) { filters = vs.filters; }
        if (vs && vs.positions) { positions = vs.positions; }
      } catch (e) { /* a broken saved view: draw the graph as it is */ }
    }
    setForm(filters);

    function showError(msg) {
      if (!errorEl) { return; }
      errorEl.hidden = !msg;
      errorEl.textContent = msg || "";
    }

    if (!window.cytoscape) {
      showError("The graph library did not load; the lists below still show the graph.");
      return;
    }
    var cy = window.cytoscape({
      container: container, elements: [], style: stylesheet(),
      minZoom: 0.02, maxZoom: 4, boxSelectionEnabled: false, selectionType: "single",
      textureOnViewport: false, pixelRatio: 1, motionBlur: false
    });
    var graph = { nodes: [], edges: [] }; // the last JSON drawn
    var loading = null, again = false, version = 0;
    var selected = null; // {kind: "node"|"edge", id}
    var picking = null; // null, "from" or "to"

    function setForm(f) {
      if (!filterForm) { return; }
      FILTERS.forEach(function (k) {
        var el = filterForm.elements.namedItem(k);
        if (el) { el.value = f[k] || ""; }
      });
    }

    function readForm() {
      var f = {};
      FILTERS.forEach(function (k) {
        var el = filterForm && filterForm.elements.namedItem(k);
        if (el && el.value.trim()) { f[k] = el.value.trim(); }
      });
      return f;
    }

    function summary() {
      var n = graph.nodes.length, e = graph.edges.length;
      return n + (n === 1 ? " node, " : " nodes, ") + e + (e === 1 ? " relation" : " relations");
    }

    // load fetches the graph; relayout lays it all out again (a new
    // filter), otherwise it is patched in place (a live change).
    function load(relayout) {
      if (loading) { again = again || relayout || "patch"; return loading; }
      var q = filterQuery(filters);
      loading = fetch(root.getAttribute("data-json") + (q ? "?" + q : ""), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if ((r.headers.get("Content-Type") || "").indexOf("json") < 0) {
            // A page instead of the graph: the session ended (the sign-in
            // page) or a proxy answered.
            throw new Error("the server answered with a page, not the graph; reload to sign in again");
          }
          return r.json().catch(function () { return {}; }).then(function (b) {
            if (!r.ok) { throw new Error((b && b.detail) || ("the server answered " + r.status)); }
            return b;
          });
        })
        .then(function (t) {
          showError("");
          graph = { nodes: t.nodes || [], edges: t.edges || [] };
          draw(elementsFrom(graph), relayout);
        })
        .catch(function (err) { showError("The graph could not be loaded: " + err.message); })
        .then(function () {
          loading = null;
          if (again) { var r = again === true; again = false; load(r); }
        });
      return loading;
    }

    function draw(els, relayout) {
      version++;
      var fresh = relayout || cy.elements().length === 0;
      if (fresh) {
        cy.batch(function () {
          cy.elements().remove();
          cy.add(els.nodes);
          cy.add(els.edges);
        });
        var count = els.nodes.length, allPlaced = count > 0;
        els.nodes.forEach(function (n) { if (!positions[n.data.id]) { allPlaced = false; } });
        cy.style().selector("edge").style("curve-style", count > LARGE ? "haystack" : "bezier").update();
        var placed = null;
        if (!allPlaced && count > LARGE) {
          placed = layers(els.nodes.map(function (x) { return x.data.id; }),
            els.edges.map(function (x) { return [x.data.source, x.data.target]; }));
        }
        var layout = cy.layout(layoutOptions(count, positions, allPlaced, placed));
        layout.one("layoutstop", function () {
          // A small graph fitted to the canvas would be drawn huge.
          if (cy.zoom() > 1.25) { cy.zoom(1.25); cy.center(); }
          ready();
        });
        layout.run();
      } else {
        var ids = {};
        cy.elements().forEach(function (el) { ids[el.id()] = true; });
        var d = diff(ids, els);
        cy.batch(function () {
          d.remove.forEach(function (id) { cy.getElementById(id).remove(); });
          d.update.forEach(function (el) {
            var c = cy.getElementById(el.data.id);
            c.data(el.data);
            c.classes(el.classes);
          });
          var added = cy.add(d.add);
          added.nodes().forEach(function (n) { n.position(placeNear(n)); });
        });
        ready();
      }
    }

    // placeNear puts a node that appeared live next to a neighbour already
    // drawn (or below the graph), without moving anything else.
    function placeNear(n) {
      var nb = n.neighborhood("node").filter(function (m) { return m.id() !== n.id(); })[0];
      if (nb) { var p = nb.position(); return { x: p.x + 40, y: p.y + 40 }; }
      var bb = cy.elements().boundingBox();
      return { x: isFinite(bb.x1) ? bb.x1 : 0, y: isFinite(bb.y2) ? bb.y2 + 60 : 0 };
    }

    function ready() {
      text(countEl, summary());
      root.setAttribute("data-graph-version", String(version));
      refreshPanel();
      if (lists && lists.open) { buildLists(); }
      text(lists && lists.querySelector("[data-list-summary]"), summary());
      document.body.dataset.graphReady = String(cy.nodes().length);
    }

    // The details panel.
    var parts = {
      empty: panel && panel.querySelector("[data-panel-empty]"),
      node: panel && panel.querySelector("[data-panel-node]"),
      edge: panel && panel.querySelector("[data-panel-edge]")
    };
    function field(part, name) { return part ? part.querySelector('[data-field="' + name + '"]') : null; }

    function refPath(ref) {
      var p = refParts(ref);
      var path = root.getAttribute("data-catalog") + "/" + encodeURIComponent(p.kind) + "/" + encodeURIComponent(p.name);
      if (p.namespace && p.namespace !== "default") { path += "?ns=" + encodeURIComponent(p.namespace); }
      return path;
    }

    function showPanel(which) {
      ["empty", "node", "edge"].forEach(function (k) { if (parts[k]) { parts[k].hidden = k !== which; } });
    }

    function refreshPanel() {
      if (!selected) { showPanel("empty"); return; }
      var el = cy.getElementById(selected.id);
      if (el.empty()) { selected = null; showPanel("empty"); return; }
      if (selected.kind === "node") {
        var d = el.data();
        text(field(parts.node, "id"), d.id);
        text(field(parts.node, "kind"), d.kind);
        text(field(parts.node, "owner"), d.owner || "no team");
        text(field(parts.node, "status"), d.status);
        text(field(parts.node, "labels"), Object.keys(d.labels).sort().map(function (k) { return k + "=" + d.labels[k]; }).join(", ") || "none");
        var ul = field(parts.node, "problems");
        if (ul) {
          ul.textContent = "";
          if (!d.details.length) {
            var none = document.createElement("li");
            none.textContent = "None found.";
            ul.appendChild(none);
          }
          d.details.forEach(function (p) {
            var li = document.createElement("li");
            li.setAttribute("data-code", p.code);
            var code = document.createElement("code");
            code.textContent = p.code;
            li.appendChild(code);
            li.appendChild(document.createTextNode(" " + (p.message || "")));
            ul.appendChild(li);
          });
        }
        var tr = field(parts.node, "traffic-row"), dr = field(parts.node, "dead-row");
        if (tr) { tr.hidden = !d.traced; text(field(parts.node, "traffic"), traffic(d.traced)); }
        if (dr) {
          dr.hidden = d.deadLetters === null;
          var dl = field(parts.node, "dead");
          if (dl && d.deadLetters !== null) {
            dl.textContent = d.deadLetters + " waiting: browse and replay";
            dl.setAttribute("href", root.getAttribute("data-dlq") + "/" + encodeURIComponent(d.id));
          }
        }
        var link = field(parts.node, "link");
        if (link) { link.setAttribute("href", refPath(d.id)); link.hidden = d.status === "missing"; }
        showPanel("node");
      } else {
        var e = el.data();
        text(field(parts.edge, "from"), e.source);
        text(field(parts.edge, "type"), e.type);
        text(field(parts.edge, "to"), e.target);
        text(field(parts.edge, "derived"), e.derived ? "This relation follows from the entity's settings (its dead-letter target or a saga step): change it on the entity's page." : "");
        text(field(parts.edge, "flag"), e.undeclared ? "Seen in traces, but not in the catalog." :
          e.silent ? "Declared, but no span showed it in the window." : "");
        text(field(parts.edge, "traffic"), e.traced ? "Traffic: " + traffic(e.traced) : "");
        var del = parts.edge && parts.edge.querySelector('[data-action="delete-edge"]');
        if (del) { del.hidden = e.derived || e.undeclared; }
        var dec = parts.edge && parts.edge.querySelector('[data-action="declare"]');
        if (dec) { dec.hidden = !e.undeclared; }
        showPanel("edge");
      }
    }

    function say(msg) { text(pickState, msg); }

    function pick(id) {
      if (!relateForm) { return; }
      var from = relateForm.elements.namedItem("relation-from"), to = relateForm.elements.namedItem("relation-to");
      cy.nodes(".picked").removeClass("picked");
      if (picking === "from") {
        from.value = id;
        picking = "to";
        cy.getElementById(id).addClass("picked");
        say("From " + id + ": now click the target node.");
      } else if (picking === "to") {
        to.value = id;
        picking = null;
        say("From " + from.value + " to " + id + ": choose the type and add the relation.");
      }
    }

    cy.on("tap", "node", function (evt) {
      var id = evt.target.id();
      if (picking) { pick(id); }
      selected = { kind: "node", id: id };
      refreshPanel();
    });
    cy.on("tap", "edge", function (evt) {
      selected = { kind: "edge", id: evt.target.id() };
      refreshPanel();
    });
    cy.on("tap", function (evt) {
      if (evt.target === cy) { selected = null; refreshPanel(); }
    });

    if (panel) {
      panel.addEventListener("click", function (evt) {
        var b = evt.target.closest("[data-action]");
        if (!b || !selected) { return; }
        var act = b.getAttribute("data-action");
        if (act === "focus") {
          filters = readForm();
          filters.around = selected.id;
          if (!filters.depth) { filters.depth = "1"; }
          setForm(filters);
          pushFilters();
          load(true);
        } else if (act === "from" && relateForm) {
          picking = "from";
          pick(selected.id);
          relateForm.scrollIntoView({ block: "nearest" });
        } else if (act === "delete-edge") {
          var e = cy.getElementById(selected.id).data();
          unrelate(e.source, e.type, e.target);
        } else if (act === "declare") {
          var u = cy.getElementById(selected.id).data();
          declare(u.source, u.type, u.target);
        }
      });
    }

    // declare adds a relation spans showed to the catalog.
    function declare(from, type, to) {
      postJSON(root.getAttribute("data-relate"), { from: from, type: type, to: to })
        .then(function () { showError(""); selected = null; say("Declared " + from + " " + type + " " + to + "."); load(false); })
        .catch(function (err) { showError("The relation could not be declared: " + err.message); });
    }

    function unrelate(from, type, to) {
      if (!window.confirm("Delete the relation " + from + " " + type + " " + to + "?")) { return; }
      postJSON(root.getAttribute("data-unrelate"), { from: from, type: type, to: to })
        .then(function () { showError(""); selected = null; say("Deleted " + from + " " + type + " " + to + "."); load(false); })
        .catch(function (err) { showError("The relation could not be deleted: " + err.message); });
    }

    if (relateForm) {
      relateForm.addEventListener("click", function (evt) {
        if (evt.target.closest('[data-action="pick"]')) {
          picking = "from";
          say("Click the source node on the graph.");
        }
      });
      relateForm.addEventListener("submit", function (evt) {
        evt.preventDefault();
        var el = relateForm.elements;
        var body = { from: el.namedItem("relation-from").value.trim(), type: el.namedItem("relation-type").value, to: el.namedItem("relation-to").value.trim() };
        postJSON(root.getAttribute("data-relate"), body)
          .then(function () {
            showError("");
            cy.nodes(".picked").removeClass("picked");
            say("Added " + body.from + " " + body.type + " " + body.to + ".");
            el.namedItem("relation-from").value = "";
            el.namedItem("relation-to").value = "";
            load(false);
          })
          .catch(function (err) { say("Not added: " + err.message); });
      });
    }

    function pushFilters() {
      var q = filterQuery(filters);
      history.replaceState(null, "", root.getAttribute("data-page") + (q ? "?" + q : ""));
    }

    if (filterForm) {
      filterForm.addEventListener("submit", function (evt) {
        evt.preventDefault();
        filters = readForm();
        positions = {};
        pushFilters();
        load(true);
      });
    }

    if (viewForm) {
      viewForm.addEventListener("submit", function (evt) {
        evt.preventDefault();
        var pos = {};
        cy.nodes().forEach(function (n) { var p = n.position(); pos[n.id()] = { x: Math.round(p.x), y: Math.round(p.y) }; });
        var name = viewForm.elements.namedItem("view-name").value.trim();
        var out = viewForm.querySelector("[data-view-link]");
        postJSON(root.getAttribute("data-views"), { name: name, state: { filters: filters, positions: pos } })
          .then(function (v) {
            history.replaceState(null, "", v.url);
            if (out) {
              out.textContent = "Saved. Share it: ";
              var a = document.createElement("a");
              a.href = v.url;
              a.textContent = location.origin + v.url;
              out.appendChild(a);
            }
          })
          .catch(function (err) { text(out, "Not saved: " + err.message); });
      });
    }

    // The accessible lists of nodes and relations.
    function cell(tr, s, code) {
      var td = document.createElement("td");
      if (code) { var c = document.createElement("code"); c.textContent = s; td.appendChild(c); } else { td.textContent = s; }
      tr.appendChild(td);
      return td;
    }

    function buildLists() {
      var nb = lists.querySelector("#topology-nodes tbody"), eb = lists.querySelector("#topology-edges tbody");
      var nf = document.createDocumentFragment(), ef = document.createDocumentFragment();
      graph.nodes.forEach(function (n) {
        var tr = document.createElement("tr");
        var codes = problemCodes(n).join(" ");
        tr.setAttribute("data-id", n.id);
        tr.setAttribute("data-status", n.status || "ok");
        tr.setAttribute("data-problems", codes);
        var td = cell(tr, "", false);
        var a = document.createElement("a");
        a.href = refPath(n.id);
        a.textContent = n.id;
        td.appendChild(n.status === "missing" ? document.createTextNode(n.id) : a);
        cell(tr, n.kind || "", false);
        cell(tr, n.owner_team || "", false);
        cell(tr, n.status || "ok", false);
        cell(tr, codes, false);
        nf.appendChild(tr);
      });
      graph.edges.forEach(function (e) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-from", e.from);
        tr.setAttribute("data-type", e.type);
        tr.setAttribute("data-to", e.to);
        if (e.derived) { tr.setAttribute("data-derived", "true"); }
        cell(tr, e.from, true);
        if (e.declared === false) { tr.setAttribute("data-undeclared", "true"); }
        if (e.silent) { tr.setAttribute("data-silent", "true"); }
        cell(tr, e.type + (e.derived ? " (from settings)" : "") + (e.declared === false ? " (seen in traces, not declared)" : "") +
          (e.silent ? " (silent in traces)" : "") + (e.traced ? ": " + trafficLabel(e.traced, true) : ""), false);
        cell(tr, e.to, true);
        if (canEdit) {
          var td = cell(tr, "", false);
          if (e.declared === false) {
            var dec = document.createElement("button");
            dec.type = "button";
            dec.className = "btn btn-primary btn-small";
            dec.textContent = "Declare";
            dec.setAttribute("data-action", "declare");
            dec.setAttribute("aria-label", "Declare " + e.from + " " + e.type + " " + e.to + " in the catalog");
            td.appendChild(dec);
          } else if (!e.derived) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn btn-danger btn-small";
            b.textContent = "Delete";
            b.setAttribute("data-action", "unrelate");
            b.setAttribute("aria-label", "Delete " + e.from + " " + e.type + " " + e.to);
            td.appendChild(b);
          }
        }
        ef.appendChild(tr);
      });
      nb.textContent = "";
      nb.appendChild(nf);
      eb.textContent = "";
      eb.appendChild(ef);
      lists.setAttribute("data-built", String(version));
    }

    if (lists) {
      lists.addEventListener("toggle", function () { if (lists.open) { buildLists(); } });
      lists.addEventListener("click", function (evt) {
        var b = evt.target.closest('[data-action="unrelate"], [data-action="declare"]');
        if (!b) { return; }
        var tr = b.closest("tr");
        var act = b.getAttribute("data-action") === "declare" ? declare : unrelate;
        act(tr.getAttribute("data-from"), tr.getAttribute("data-type"), tr.getAttribute("data-to"));
      });
    }

    // Live: a change anywhere in the catalog refetches the graph (at most
    // one fetch in flight, and one more queued) and patches it in place.
    var timer = null;
    function changed() {
      if (timer) { return; }
      timer = setTimeout(function () { timer = null; load(false); }, 200);
    }
    if (window.SwitchboardLive && root.getAttribute("data-ws")) {
      window.SwitchboardLive.open(root.getAttribute("data-ws"), {
        state: function (s, reason) {
          root.setAttribute("data-live", s);
          text(liveEl, s === "closed" && reason ? "closed: " + reason : s);
          if (s === "live" && version > 0) { changed(); }
        },
        message: function (type) { if (type === "change") { changed(); } },
        reset: changed
      });
    }
    // Traffic from traces changes without catalog changes: refetch it.
    setInterval(function () { if (filters.traced_since && !document.hidden) { changed(); } }, TRAFFIC_REFRESH);

    // For tests and the keyboard-less: where a node is drawn, in page
    // coordinates.
    window.SwitchboardTopology = {
      point: function (id) {
        var n = cy.getElementById(id);
        if (n.empty()) { return null; }
        var r = container.getBoundingClientRect(), p = n.renderedPosition();
        return { x: r.left + p.x, y: r.top + p.y };
      },
      // edgePoint is a point on an edge (by its key: "r|", "d|" or "u|"
      // for a declared, derived or undeclared one, then from|type|to), a
      // third of the way along (clear of its label), in whole pixels as a
      // mouse event carries them.
      edgePoint: function (id) {
        var e = cy.getElementById(id);
        if (e.empty()) { return null; }
        var r = container.getBoundingClientRect(), a = e.renderedSourceEndpoint(), b = e.renderedTargetEndpoint();
        return { x: Math.round(r.left + a.x + (b.x - a.x) / 3), y: Math.round(r.top + a.y + (b.y - a.y) / 3) };
      },
      center: function (id) {
        var n = cy.getElementById(id);
        if (!n.empty()) { cy.zoom(1); cy.center(n); }
      }
    };

    load(true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-testid=topology]");
    if (root) { start(root); }
  });
})();
