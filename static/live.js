// Switchboard's one client for live streams (internal/live on the server).
// Every live page uses it: SwitchboardLive.open(path, handlers) opens a
// WebSocket to path on this origin and keeps it open — reconnecting with
// backoff and jitter, resuming after the last seq it saw — until the
// server says the right to the stream is gone (close 4401/4403) or close()
// is called.
//
// Every message is {"type","data","seq"}; "ready" opens a stream and says
// whether it resumed, "ping" is answered with a pong, "error" precedes a
// failure. handlers (all optional):
//   message(type, data, seq, text): a message of the stream; text is the
//     message as sent (to read numbers beyond a double's precision).
//   reset(): the stream did not resume where the page left off (or this
//     is a reconnect of a stream that cannot resume): reload what it shows.
//   state(s, reason): "connecting", "live", "reconnecting" or "closed".
//   query(): extra query parameters for each (re)connection, as a string
//     without "?" (e.g. "from_position=12&category=order").
(function () {
  "use strict";

  function open(path, handlers) {
    handlers = handlers || {};
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var last = 0; // the seq of the last message seen, 0 for none
    var delay = 1000;
    var ws = null;
    var stopped = false;
    var connected = false; // a connection was live before
    var timer = null;

    function state(s, reason) {
      if (handlers.state) { handlers.state(s, reason || ""); }
    }

    function url() {
      var q = handlers.query ? handlers.query() : "";
      if (last > 0) { q += (q ? "&" : "") + "resume_after=" + last; }
      return scheme + location.host + path + (q ? (path.indexOf("?") < 0 ? "?" : "&") + q : "");
    }

    function retry() {
      if (stopped) { return; }
      state("reconnecting");
      var wait = delay / 2 + Math.random() * delay / 2;
      delay = Math.min(delay * 2, 30000);
      timer = setTimeout(connect, wait);
    }

    function connect() {
      timer = null;
      if (stopped) { return; }
      try {
        ws = new WebSocket(url());
      } catch (e) {
        retry();
        return;
      }
      ws.onmessage = function (evt) {
        if (typeof evt.data !== "string") { return; }
        var m;
        try { m = JSON.parse(evt.data); } catch (e) { return; }
        if (!m || typeof m.type !== "string") { return; }
        if (m.type === "ping") {
          ws.send('{"type":"pong"}');
          return;
        }
        if (m.type === "ready") {
          delay = 1000;
          state("live");
          var resumed = m.data && m.data.resumed;
          if (connected && !resumed && handlers.reset) { handlers.reset(); }
          connected = true;
          return;
        }
        if (typeof m.seq === "number" && m.seq > last) { last = m.seq; }
        if (handlers.message) { handlers.message(m.type, m.data, m.seq || 0, evt.data); }
      };
      ws.onclose = function (evt) {
        ws = null;
        if (evt.code === 4401 || evt.code === 4403) {
          stopped = true;
          state("closed", evt.reason);
          return;
        }
        retry();
      };
    }

    state("connecting");
    connect();
    return {
      close: function () {
        stopped = true;
        if (timer) { clearTimeout(timer); }
        if (ws) { ws.close(1000, ""); }
      }
    };
  }

  window.SwitchboardLive = { open: open };
})();
