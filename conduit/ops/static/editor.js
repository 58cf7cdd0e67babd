// The channel editor: line numbers beside the YAML, and a problem's "file:LINE:" selects
// that line in the text. Plain JavaScript; without it the textarea works all the same.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var text = document.querySelector(".numbered textarea");
    var gutter = document.querySelector(".numbered .gutter");
    if (!text || !gutter) { return; }
    function number() {
      var lines = text.value.split("\n").length, out = [];
      for (var i = 1; i <= lines; i++) { out.push(i); }
      gutter.textContent = out.join("\n");
      gutter.scrollTop = text.scrollTop;
    }
    text.addEventListener("input", number);
    text.addEventListener("scroll", function () { gutter.scrollTop = text.scrollTop; });
    number();
    document.querySelectorAll("#yaml-problems li").forEach(function (item) {
      var found = /^[^:\s]+:(\d+):/.exec(item.textContent);
      if (!found) { return; }
      item.setAttribute("data-line", found[1]);
      item.addEventListener("click", function () {
        var lines = text.value.split("\n"), line = parseInt(found[1], 10), start = 0;
        for (var i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
        text.focus();
        text.setSelectionRange(start, start + (lines[line - 1] || "").length);
      });
    });
  });
})();
