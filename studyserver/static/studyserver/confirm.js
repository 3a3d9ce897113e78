// Confirmation prompts without inline handlers (the Content-Security-Policy refuses onclick=...):
// a form with data-confirm="..." asks before it is submitted; so does a button with data-confirm.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target, text = form.getAttribute && form.getAttribute("data-confirm");
    if (text && !window.confirm(text)) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });
})();
