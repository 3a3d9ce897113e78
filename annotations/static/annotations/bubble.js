/* BubbleView (Kim et al. 2017): the image is shown blurred (Gaussian, sigma in stimulus px); each
 * click or tap reveals one sharp circular bubble (radius in stimulus px) and the previous bubble
 * closes. Clicks are recorded as [x, y, t] in stimulus px and ms since the image was shown.
 * Variants: "free" (fixed viewing time, then the trial ends) and "description" (a text box with a
 * minimum length; the participant submits). */
(function () {
  "use strict";

  function BubbleTask(stageEl, tools, trial, opts) {
    opts = opts || {};
    const p = trial.params || {};
    // sizes in stimulus px, from the trial's params: the server fills in the defaults (annotations/task_params.py)
    const radius = p.bubble_radius;
    const sigma = p.blur_sigma;
    const variant = p.variant || "free";
    const stage = window.StudyStage.Stage(stageEl, trial, opts);
    const canvas = stage.canvas("view");
    canvas.setAttribute("data-testid", "bubble-canvas");
    const ctx = canvas.getContext("2d");
    const clicks = [], pointerTypes = new Set();
    let base = null, active = false, shownAt = 0, last = null;

    function draw() {
      if (!base) return;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(base, 0, 0);
      if (last) {
        const s = stage.scale();
        ctx.save();
        ctx.beginPath();
        ctx.arc(last[0] * s, last[1] * s, radius * s, 0, 2 * Math.PI);
        ctx.clip();
        ctx.drawImage(stage.image, 0, 0, canvas.width, canvas.height);
        ctx.restore();
      }
    }
    const ready = stage.ready.then(function () { base = stage.blurred(sigma); draw(); });

    if (!opts.example) {
      canvas.addEventListener("pointerdown", function (ev) {
        if (!active || (ev.button !== undefined && ev.button > 0)) return;
        ev.preventDefault();
        pointerTypes.add(window.StudyStage.pointerTypeOf(ev));
        const xy = stage.toStim(ev, canvas);
        last = [xy[0], xy[1], Math.max(0, Math.round(ev.timeStamp - shownAt))];
        clicks.push(last);
        draw();
        update();
        if (opts.onChange) opts.onChange();
      });
      canvas.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
    }

    tools.innerHTML = "";
    const counter = document.createElement("span");
    counter.className = "muted"; counter.id = "click-count";
    let text = null, chars = null;
    if (!opts.example) tools.append(counter);
    if (variant === "description" && !opts.example) {
      const box = document.createElement("div");
      box.className = "describe";
      const label = document.createElement("label");
      label.htmlFor = "description"; label.textContent = "Describe the image:";
      text = document.createElement("textarea");
      text.id = "description"; text.rows = 4; text.maxLength = 10000;
      text.placeholder = "What is in the image? Click on it to see the details.";
      chars = document.createElement("span");
      chars.className = "muted"; chars.id = "char-count";
      text.addEventListener("input", function () { update(); if (opts.onChange) opts.onChange(); });
      box.append(label, text, chars);
      (stageEl.closest(".stage-wrap") || stageEl).after(box);
      opts.cleanup = function () { box.remove(); };
    }
    function update() {
      counter.textContent = clicks.length + (p.min_clicks ? " / " + p.min_clicks : "") + " clicks";
      if (chars) chars.textContent = text.value.trim().length + " / " + (p.min_chars || 0) + " characters";
    }
    update();

    return {
      kind: "bubble",
      ready: ready,
      timeLimitMs: p.viewing_ms || null,
      fixedTime: variant === "free" && !!p.viewing_ms,
      gated: true,
      start: function () { shownAt = performance.now(); active = true; if (text) text.disabled = false; },
      stop: function () { active = false; last = null; draw(); if (text) text.disabled = true; },
      destroy: function () { if (opts.cleanup) opts.cleanup(); },
      example: function (region) { last = regionCentre(region); draw(); },
      problem: function () {
        if (clicks.length < (p.min_clicks || 0)) return "Click at least " + p.min_clicks + " times on the image (" + clicks.length + " so far).";
        if (text && text.value.trim().length < (p.min_chars || 0)) return "Write at least " + p.min_chars + " characters (" + text.value.trim().length + " so far).";
        return "";
      },
      payload: function () {
        return {
          display: stage.display(),
          pointer_types: Array.from(pointerTypes),
          user_agent: navigator.userAgent,
          clicks: clicks,
          bubble_radius: radius,
          blur_sigma: sigma,
          viewing_ms: p.viewing_ms || null,
          variant: variant,
          description: text ? text.value : "",
        };
      },
      elapsed: function () { return Math.round(performance.now() - shownAt); },
    };
  }

  function regionCentre(region) {
    const pts = [];
    (region.polygons || []).forEach(function (poly) { poly.forEach(function (v) { pts.push(v); }); });
    (region.boxes || []).forEach(function (b) { pts.push([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]); });
    if (!pts.length) return null;
    const sx = pts.reduce(function (a, v) { return a + v[0]; }, 0), sy = pts.reduce(function (a, v) { return a + v[1]; }, 0);
    return [sx / pts.length, sy / pts.length];
  }

  window.BubbleTask = BubbleTask;
  window.regionCentre = regionCentre;
})();
