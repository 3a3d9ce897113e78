/* Paint task: a canvas over the stimulus. Strokes are recorded losslessly in stimulus pixel
 * coordinates (round-capped polylines with a radius, an erase flag and timestamps in ms since the
 * trial was shown), which is exactly what the server rasterises (analysis/rasterize.py).
 * Pointer events, so mouse, pen and touch all work. Brush radii arrive in stimulus px. */
(function () {
  "use strict";

  function PaintTask(stageEl, tools, trial, opts) {
    opts = opts || {};
    const p = trial.params || {};
    const radii = p.brush_radii;  // stimulus px, from the trial's params (the server fills in the defaults)
    const stage = window.StudyStage.Stage(stageEl, trial, opts);
    const img = document.createElement("img");
    img.src = trial.image_url; img.alt = "image to annotate"; img.draggable = false;
    const canvas = document.createElement("canvas");
    canvas.className = "paint";
    canvas.width = trial.width; canvas.height = trial.height; // stimulus resolution: what the server rasterises
    canvas.setAttribute("data-testid", "paint-canvas");
    stageEl.append(img, canvas);
    const ctx = canvas.getContext("2d");

    const strokes = [], redo = [], pointerTypes = new Set();
    let radius = radii[Math.min(1, radii.length - 1)], erase = false, current = null, active = false, shownAt = 0;

    function drawStroke(s, from) {
      ctx.save();
      ctx.globalCompositeOperation = s.erase ? "destination-out" : "source-over";
      ctx.strokeStyle = ctx.fillStyle = "rgb(255, 40, 40)";
      ctx.lineWidth = 2 * s.radius;
      ctx.lineCap = ctx.lineJoin = "round";
      const pts = s.points;
      if (pts.length === 1) {
        ctx.beginPath(); ctx.arc(pts[0][0], pts[0][1], s.radius, 0, 2 * Math.PI); ctx.fill();
      } else {
        ctx.beginPath();
        const start = Math.max(0, (from || 0) - 1);
        ctx.moveTo(pts[start][0], pts[start][1]);
        for (let i = start + 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
        ctx.stroke();
      }
      ctx.restore();
    }
    function redraw() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      strokes.forEach(function (s) { drawStroke(s, 0); });
      updateButtons();
    }
    function point(ev) {
      const xy = stage.toStim(ev, canvas);
      return [xy[0], xy[1], Math.max(0, Math.round(ev.timeStamp - shownAt))];
    }
    function paintedFraction() {
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) n++;
      return n / (canvas.width * canvas.height);
    }

    if (!opts.example) {
      canvas.addEventListener("pointerdown", function (ev) {
        if (!active || (ev.button !== undefined && ev.button > 0)) return;
        ev.preventDefault();
        canvas.setPointerCapture(ev.pointerId);
        pointerTypes.add(window.StudyStage.pointerTypeOf(ev));
        current = { radius: Math.round(radius * 100) / 100, erase: erase, points: [point(ev)] };
        strokes.push(current);
        redo.length = 0;
        if (opts.onChange) opts.onChange();
        drawStroke(current, 0);
      });
      canvas.addEventListener("pointermove", function (ev) {
        if (!current) return;
        ev.preventDefault();
        const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
        const before = current.points.length;
        (events.length ? events : [ev]).forEach(function (e) { current.points.push(point(e)); });
        drawStroke(current, before);
      });
      const end = function (ev) {
        if (!current) return;
        current = null;
        updateButtons();
        if (canvas.hasPointerCapture && canvas.hasPointerCapture(ev.pointerId)) canvas.releasePointerCapture(ev.pointerId);
      };
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);
      canvas.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
    }

    // Toolbar
    tools.innerHTML = "";
    function button(label, id, onClick) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.id = id;
      b.addEventListener("click", onClick);
      tools.append(b);
      return b;
    }
    const names = radii.length === 1 ? ["Brush"] : radii.length === 2 ? ["Small", "Large"] : ["Small", "Medium", "Large", "Huge"];
    const sizeButtons = opts.example ? [] : radii.map(function (r, i) {
      return button(names[i] || ("Size " + (i + 1)), "brush-" + i, function () { radius = r; erase = false; updateButtons(); });
    });
    const eraserButton = opts.example ? null : button("Eraser", "eraser", function () { erase = !erase; updateButtons(); });
    const undoButton = opts.example ? null : button("Undo", "undo", function () { if (strokes.length) { redo.push(strokes.pop()); redraw(); } });
    const redoButton = opts.example ? null : button("Redo", "redo", function () { if (redo.length) { strokes.push(redo.pop()); redraw(); } });
    const clearButton = opts.example ? null : button("Clear", "clear", function () { if (strokes.length) { redo.length = 0; strokes.length = 0; redraw(); } });
    function updateButtons() {
      if (opts.example) return;
      sizeButtons.forEach(function (b, i) { b.setAttribute("aria-pressed", String(radii[i] === radius && !erase)); });
      eraserButton.setAttribute("aria-pressed", String(erase));
      undoButton.disabled = !strokes.length || !active;
      redoButton.disabled = !redo.length || !active;
      clearButton.disabled = !strokes.length || !active;
      sizeButtons.concat([eraserButton]).forEach(function (b) { b.disabled = !active; });
    }
    updateButtons();

    return {
      kind: "paint",
      ready: stage.ready,
      timeLimitMs: p.time_limit_ms || null,
      fixedTime: false,
      start: function () { shownAt = performance.now(); active = true; updateButtons(); },
      stop: function () { active = false; current = null; updateButtons(); },
      // An example for the instructions: the known region painted as a participant would.
      example: function (region) {
        ctx.save();
        ctx.fillStyle = "rgb(255, 40, 40)";
        (region.polygons || []).forEach(function (poly) {
          ctx.beginPath();
          poly.forEach(function (v, i) { if (i) ctx.lineTo(v[0], v[1]); else ctx.moveTo(v[0], v[1]); });
          ctx.closePath(); ctx.fill();
        });
        (region.boxes || []).forEach(function (b) { ctx.fillRect(b[0], b[1], b[2] - b[0], b[3] - b[1]); });
        ctx.restore();
      },
      problem: function () {
        if (!strokes.some(function (s) { return !s.erase; })) return "Paint the parts of the image that made you recognise the object, then submit.";
        const area = paintedFraction();
        if (area === 0) return "Nothing is painted: paint the parts of the image that made you recognise the object.";
        if (p.min_area && area < p.min_area) return "Paint a little more: at least " + (100 * p.min_area).toFixed(1) + "% of the image (now " + (100 * area).toFixed(1) + "%).";
        if (p.max_area && area > p.max_area) return "You painted " + Math.round(100 * area) + "% of the image. Paint only the parts that made you recognise the object (at most " + Math.round(100 * p.max_area) + "%).";
        return "";
      },
      payload: function () {
        return {
          display: stage.display(),
          pointer_types: Array.from(pointerTypes),
          user_agent: navigator.userAgent,
          strokes: strokes,
          time_limit_ms: p.time_limit_ms || null,
        };
      },
      elapsed: function () { return Math.round(performance.now() - shownAt); },
    };
  }

  window.PaintTask = PaintTask;
})();
