// The completion page's countdown to the recruitment site (#redirect-note data-delay-s, in seconds).
(function () {
  "use strict";
  var note = document.getElementById("redirect-note"), link = document.getElementById("redirect");
  if (!note || !link) return;
  var left = parseFloat(note.getAttribute("data-delay-s")), el = document.getElementById("redirect-seconds");
  var url = link.href;
  if (!(left > 0)) { window.location.assign(url); return; }
  var timer = setInterval(function () {
    left -= 1; el.textContent = String(Math.max(0, Math.ceil(left)));
    if (left <= 0) { clearInterval(timer); window.location.assign(url); }
  }, 1000);
})();
