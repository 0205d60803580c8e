// The catalog forms (views/catalog.templ). A broker's URL may hold a user
// and password: the server never sends it back, and this script makes sure
// the browser does not keep it either — the field is emptied when the page
// comes back from the back-forward cache, and autofill is off. The type
// select shows the fields of the chosen broker type first.
(function () {
  "use strict";

  // brokerFields says which fields a broker type uses.
  function brokerFields(type) {
    return type === "kafka" ? ["bootstrap_servers"] : ["url", "vhost", "management_url"];
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = { brokerFields: brokerFields };
    return;
  }

  function clearSecrets() {
    document.querySelectorAll('#entity-form input[name="url"]').forEach(function (el) { el.value = ""; });
  }

  function showBrokerFields(form) {
    var sel = form.querySelector('select[name="broker_type"]');
    if (!sel) { return; }
    var all = ["url", "vhost", "management_url", "bootstrap_servers"], use = brokerFields(sel.value);
    all.forEach(function (name) {
      var el = form.querySelector('[name="' + name + '"]');
      var box = el && el.closest(".field");
      if (box) { box.hidden = use.indexOf(name) < 0; }
    });
  }

  window.addEventListener("pageshow", function (evt) { if (evt.persisted) { clearSecrets(); } });
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("entity-form");
    if (!form) { return; }
    showBrokerFields(form);
    form.addEventListener("change", function (evt) {
      if (evt.target.name === "broker_type") { showBrokerFields(form); }
    });
  });
})();
