/* SALICON-style mouse-contingent viewing (Jiang et al. 2015): the image is shown blurred; a sharp
 * window (radius in stimulus px, fading to the blur over the next quarter radius) follows the
 * pointer. The pointer position is sampled every `sample_interval_ms` (default 10 ms, ~100 Hz)
 * while it is over the image (for touch: while the finger is down), for a fixed viewing time.
 * Samples are [x, y, t] in stimulus px and ms since the image was shown. */
(function () {
  "use strict";

  function MouseTask(stageEl, tools, trial, opts) {
    opts = opts || {};
    const p = trial.params || {};
    // sizes in stimulus px, from the trial's params: the server fills in the defaults (annotations/task_params.py)
    const radius = p.window_radius;
    const sigma = p.blur_sigma;
    const interval = p.sample_interval_ms;
    const stage = window.StudyStage.Stage(stageEl, trial, opts);
    const canvas = stage.canvas("view");
    canvas.setAttribute("data-testid", "mouse-canvas");
    const ctx = canvas.getContext("2d");
    const lens = document.createElement("canvas");
    const lctx = lens.getContext("2d");
    const samples = [], pointerTypes = new Set();
    let base = null, active = false, shownAt = 0, pos = null, over = false, timer = null, frame = 0;

    function draw() {
      frame = 0;
      if (!base) return;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(base, 0, 0);
      if (!pos || !over) return;
      const s = stage.scale(), r = radius * s, outer = 1.25 * r;
      const size = Math.ceil(2 * outer) + 2;
      const x0 = Math.round(pos[0] * s - outer) - 1, y0 = Math.round(pos[1] * s - outer) - 1;
      lens.width = size; lens.height = size;
      const cx = pos[0] * s - x0, cy = pos[1] * s - y0;
      const g = lctx.createRadialGradient(cx, cy, r, cx, cy, outer);
      g.addColorStop(0, "rgba(0,0,0,1)");
      g.addColorStop(1, "rgba(0,0,0,0)");
      lctx.fillStyle = g;
      lctx.beginPath(); lctx.arc(cx, cy, outer, 0, 2 * Math.PI); lctx.fill();
      lctx.globalCompositeOperation = "source-in";
      lctx.drawImage(stage.image, -x0, -y0, canvas.width, canvas.height);
      lctx.globalCompositeOperation = "source-over";
      ctx.drawImage(lens, x0, y0);
    }
    function schedule() { if (!frame) frame = requestAnimationFrame(draw); }
    const ready = stage.ready.then(function () { base = stage.blurred(sigma); draw(); });

    function track(ev) {
      pointerTypes.add(window.StudyStage.pointerTypeOf(ev));
      pos = stage.toStim(ev, canvas);
      schedule();
    }
    if (!opts.example) {
      canvas.addEventListener("pointerenter", function (ev) { if (ev.pointerType !== "touch") { over = true; track(ev); } });
      canvas.addEventListener("pointerleave", function (ev) { if (ev.pointerType !== "touch") { over = false; schedule(); } });
      canvas.addEventListener("pointerdown", function (ev) {
        ev.preventDefault();
        if (ev.pointerType === "touch") { over = true; canvas.setPointerCapture(ev.pointerId); }
        track(ev);
      });
      canvas.addEventListener("pointermove", function (ev) {
        if (ev.pointerType === "touch" && !over) return;
        if (ev.pointerType !== "touch") over = stage.inside(ev, canvas);
        track(ev);
      });
      const lift = function (ev) { if (ev.pointerType === "touch") { over = false; schedule(); } };
      canvas.addEventListener("pointerup", lift);
      canvas.addEventListener("pointercancel", lift);
      canvas.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
    }

    tools.innerHTML = "";
    const hint = document.createElement("span");
    hint.className = "muted";
    hint.textContent = "Move the pointer (or your finger) over the image to look at it.";
    if (!opts.example) tools.append(hint);

    function sample() {
      if (!active || !over || !pos) return;
      const t = Math.round(performance.now() - shownAt);
      if (t <= p.viewing_ms) samples.push([pos[0], pos[1], t]);
    }

    return {
      kind: "mouse",
      ready: ready,
      timeLimitMs: p.viewing_ms,
      fixedTime: true,
      gated: true,
      start: function () {
        shownAt = performance.now(); active = true;
        timer = setInterval(sample, interval);
      },
      stop: function () { active = false; clearInterval(timer); over = false; draw(); },
      destroy: function () { clearInterval(timer); },
      example: function (region) { pos = window.regionCentre(region); over = true; draw(); },
      problem: function () {
        const need = p.min_samples || 0;
        if (samples.length < need) return "We did not see your pointer on the image. Keep the pointer (or your finger) on the image while it is shown.";
        return "";
      },
      payload: function () {
        return {
          display: stage.display(),
          pointer_types: Array.from(pointerTypes),
          user_agent: navigator.userAgent,
          samples: samples,
          window_radius: radius,
          blur_sigma: sigma,
          viewing_ms: p.viewing_ms,
          sample_interval_ms: interval,
        };
      },
      elapsed: function () { return Math.round(performance.now() - shownAt); },
    };
  }

  window.MouseTask = MouseTask;
})();
