// Progressive enhancement only: every page works without this file.
// - forms with data-confirm ask first;
// - an element with data-poll="URL" and data-value="V" polls URL (JSON {value}) every few seconds
//   and reloads the page when the value changes (a case still being processed, a decision made);
// - a link with data-back goes back in the history when there is one (else it follows its href).
(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-busy", "true"); }
  });
  function poll(element) {
    var url = element.getAttribute("data-poll");
    var seen = element.getAttribute("data-value");
    var every = parseInt(element.getAttribute("data-every") || "2000", 10);
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && String(body.value) !== seen) { window.location.reload(); return; }
          window.setTimeout(tick, every);
        })
        .catch(function () { window.setTimeout(tick, every * 2); });
    }
    window.setTimeout(tick, every);
  }
  document.querySelectorAll("[data-poll]").forEach(poll);
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-back]") : null;
    if (link && window.history.length > 1) { event.preventDefault(); window.history.back(); }
  });
})();
