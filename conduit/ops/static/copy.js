// Copy buttons: <button data-copy="#element"> puts the element's text on the clipboard and says
// so in the next [role=status] element (read out by screen readers).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[role=status]");
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent).then(function () {
      if (status) { status.textContent = "Copied."; }
    }, function () {
      if (status) { status.textContent = "The browser refused to copy: select the text instead."; }
    });
  });
})();
