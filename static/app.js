// Switchboard browser UI glue. No dependencies, no build step.
//
// 1. Every htmx request carries the CSRF token from
//    <meta name="csrf-token" content="..."> in the X-CSRF-Token header.
// 2. <button data-copy="ID"> copies the text of the element with id ID to
//    the clipboard and briefly shows "Copied".
// 3. The organisation switcher (<details class="org-switch">) closes on
//    Escape, giving focus back to its summary, and on a click outside it.
// 4. A signed-in page restored from the browser's back-forward cache is
//    reloaded, so that after signing out "Back" asks the server (which
//    sends the sign-in page) instead of showing the organisation's data.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // (1) CSRF header on htmx requests. Read the meta at request time so a
  // page that swapped in a new token is honoured.
  document.addEventListener("htmx:configRequest", function (evt) {
    var token = csrfToken();
    if (token && evt.detail && evt.detail.headers) {
      evt.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // (2) Copy to clipboard. Uses the async clipboard API and falls back to a
  // hidden textarea + execCommand where that API is missing (plain http on a
  // non-localhost host) or refuses (no permission, document not focused).
  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "0";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return legacyCopy(text);
      });
    }
    return legacyCopy(text);
  }

  function flashLabel(button, text) {
    if (!button.dataset.copyLabel) {
      button.dataset.copyLabel = button.textContent;
    }
    button.textContent = text;
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () {
      button.textContent = button.dataset.copyLabel;
    }, 2000);
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    evt.preventDefault();
    copyText(source.textContent.trim()).then(
      function () {
        flashLabel(button, "Copied");
      },
      function () {
        flashLabel(button, "Copy failed");
      }
    );
  });

  // (3) Close the organisation switcher on Escape or a click outside.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") {
      return;
    }
    document.querySelectorAll("details.org-switch[open]").forEach(function (d) {
      d.removeAttribute("open");
      var summary = d.querySelector("summary");
      if (summary && d.contains(document.activeElement)) {
        summary.focus();
      }
    });
  });
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details.org-switch[open]").forEach(function (d) {
      if (!d.contains(evt.target)) {
        d.removeAttribute("open");
      }
    });
  });

  // (4) No signed-in page from the back-forward cache.
  // A signed-in page that goes into the browser's back/forward cache is
  // hidden as it leaves, so Back never shows it again as it was (the session
  // may have ended since); when it is restored it reloads, which asks the
  // server and shows the page again, or the sign-in page.
  window.addEventListener("pagehide", function (evt) {
    if (evt.persisted && document.body && document.body.hasAttribute("data-signed-in")) {
      document.body.hidden = true;
    }
  });
  window.addEventListener("pageshow", function (evt) {
    if (evt.persisted && document.body && document.body.hasAttribute("data-signed-in")) {
      window.location.reload();
    }
  });
})();
