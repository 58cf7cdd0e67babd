// Conduit dashboard: a little plain JavaScript, nothing to build.
// - [data-refresh] elements reload their HTML from a URL every data-every milliseconds;
// - forms with data-confirm ask before posting.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  function refresh(element) {
    var url = element.getAttribute("data-refresh");
    var every = parseInt(element.getAttribute("data-every") || "5000", 10);
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, {headers: {"Accept": "text/html"}, credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { element.innerHTML = html; } })
        .catch(function () {});
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  });
})();
