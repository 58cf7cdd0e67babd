// Bulk select on the message lists: a form marked data-bulk owns the checkboxes that name it
// (form="ID"); this script counts the ticked ones, ticks or unticks a whole page from the
// "select all" box (mixed when some are), keeps the buttons off while none is ticked, asks
// before reprocessing, and gives the "export all" link the format chosen. Without it the form
// still posts what is ticked.
(function () {
  "use strict";
  // (form.getAttribute("id"), not form.id: the form's own fields named "ids" would shadow it)
  function mine(form, selector) {
    return Array.prototype.slice.call(document.querySelectorAll(
      selector + '[form="' + form.getAttribute("id") + '"]'));
  }
  function boxes(form) { return mine(form, "input[type=checkbox][name=ids]"); }
  function update(form) {
    var all = boxes(form);
    var ticked = all.filter(function (b) { return b.checked; }).length;
    var count = form.querySelector("[data-bulk-count]");
    if (count) { count.textContent = ticked + " selected"; }
    form.querySelectorAll("[data-bulk-needs]").forEach(function (b) { b.disabled = !ticked; });
    mine(form, "input[data-select-all]").forEach(function (box) {
      box.checked = ticked > 0 && ticked === all.length;
      box.indeterminate = ticked > 0 && ticked < all.length;
    });
  }
  function bulkForm(input) {
    var form = input.form || document.getElementById(input.getAttribute("form"));
    return form && form.hasAttribute("data-bulk") ? form : null;
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-bulk-format]")) {
      var link = target.form.querySelector("[data-export-all]");
      if (link) {
        var url = new URL(link.href, window.location.href);
        url.searchParams.set("format", target.value);
        link.href = url.pathname + url.search;
      }
      return;
    }
    if (!(target.matches && target.matches("input[type=checkbox]"))) { return; }
    var form = bulkForm(target);
    if (!form) { return; }
    if (target.hasAttribute("data-select-all")) {
      boxes(form).forEach(function (b) { b.checked = target.checked; });
    }
    update(form);
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    if (!form.hasAttribute || !form.hasAttribute("data-bulk") || !button) { return; }
    var question = button.getAttribute("data-bulk-confirm");
    var ticked = boxes(form).filter(function (b) { return b.checked; }).length;
    if (!ticked || (question && !window.confirm(question.replace("{n}", ticked)))) {
      event.preventDefault();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-bulk]");
    forms.forEach(update);
    // rows replaced by a live update (only while none is ticked: live.js) are counted again
    forms.forEach(function (form) {
      var all = mine(form, "input[data-select-all]")[0];
      var table = all && all.closest("table");
      if (table) {
        new MutationObserver(function () { update(form); }).observe(
          table, {childList: true, subtree: true});
      }
    });
  });
})();
