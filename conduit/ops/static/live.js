// Live parts of a page: an element with an id and data-live="MILLISECONDS" is replaced every
// so often by the same element of the page fetched again (same URL: same filters), without
// reloading. Not while the keyboard focus or a text selection is inside it, so tabbing and
// copying are not disturbed, nor while a row of it is ticked (bulk.js); not while the tab is
// hidden.
(function () {
  "use strict";
  function busy(element) {
    var selection = window.getSelection && window.getSelection();
    return element.contains(document.activeElement) ||
      (selection && !selection.isCollapsed && element.contains(selection.anchorNode)) ||
      element.querySelector("input[type=checkbox]:checked") !== null;
  }
  function poll(elements, every) {
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, {credentials: "same-origin",
                                   headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html");
          elements.forEach(function (element) {
            var next = fresh.getElementById(element.id);
            if (next && !busy(element) && next.innerHTML !== element.getAttribute("data-html")) {
              element.innerHTML = next.innerHTML;
              element.setAttribute("data-html", next.innerHTML);
              element.setAttribute("data-updated", String(Date.now()));
            }
          });
        })
        .catch(function () {});
    }, every);
  }
  // a deferred script runs when the page is parsed, before DOMContentLoaded's listeners (which
  // format times): what is kept to compare with is the server's HTML
  var live = Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
  live.forEach(function (e) { e.setAttribute("data-html", e.innerHTML); });
  document.addEventListener("DOMContentLoaded", function () {
    if (!live.length) { return; }
    var every = Math.min.apply(null, live.map(function (e) {
      return parseInt(e.getAttribute("data-live") || "5000", 10);
    }));
    poll(live, every);
  });
})();
