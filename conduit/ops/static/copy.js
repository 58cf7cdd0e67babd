// Copy buttons: <button data-copy="#element"> puts the element's text on the clipboard and says
// so in the next [role=status] element (read out by screen readers). Over plain HTTP to another
// host the browser has no clipboard API: the text is selected and copied the old way.
(function () {
  "use strict";
  function select(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[role=status]");
    if (!source) { return; }
    function say(text) { if (status) { status.textContent = text; } }
    function fallback() {
      select(source);
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      say(done ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () { say("Copied."); },
                                                             fallback);
    } else {
      fallback();
    }
  });
})();
