// Times in the viewer's own zone: every <time datetime="ISO"> is shown as
// "YYYY-MM-DD HH:MM:SS ZONE" (no microseconds), with the UTC time as its tooltip. Elements
// added later (live refreshes) are formatted too.
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function zone(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(date);
      for (var i = 0; i < parts.length; i++) { if (parts[i].type === "timeZoneName") { return parts[i].value; } }
    } catch (e) { /* an old browser: no zone name */ }
    return "";
  }
  function format(element) {
    if (element.hasAttribute("data-local")) { return; }
    var date = new Date(element.getAttribute("datetime"));
    if (isNaN(date.getTime())) { return; }
    element.setAttribute("title", element.textContent);
    element.textContent = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" +
      pad(date.getDate()) + " " + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" +
      pad(date.getSeconds()) + (zone(date) ? " " + zone(date) : "");
    element.setAttribute("data-local", "");
  }
  function all(root) {
    if (root.querySelectorAll) { root.querySelectorAll("time[datetime]").forEach(format); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    all(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (c) { c.addedNodes.forEach(function (n) { all(n); }); });
    }).observe(document.body, {childList: true, subtree: true});
  });
})();
