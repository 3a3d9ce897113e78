/* The stimulus on screen, shared by every task kind.
 *
 * - Display size: the server sends the nominal size (CSS px, trial.display); it is shrunk, never
 *   grown, to fit the page, once, when the trial starts, and then stays fixed (it is recorded).
 * - Coordinates: pointer positions become stimulus pixels (x right, y down, 0..width, 0..height),
 *   so every size the server sends (stimulus px) keeps its proportion to the image on any screen.
 * - Blur: a Gaussian blur of the image (sigma given in stimulus px) drawn once into a canvas at
 *   the device's resolution, with mirrored borders so the edges do not darken. Uses the canvas
 *   filter `blur()` (sigma = the CSS blur radius) where supported, else a three-pass box blur, which
 *   approximates the Gaussian (Wells 1986). */
(function () {
  "use strict";

  function fitDisplay(stage, nominal, opts) {
    const parent = stage.parentElement;
    const availW = Math.max(120, (parent && parent.clientWidth) || nominal.width);
    const reserve = (opts && opts.reserveHeight) || 210;
    const availH = Math.max(180, window.innerHeight - reserve);
    const shrink = Math.min(1, availW / nominal.width, availH / nominal.height);
    return { width: Math.round(nominal.width * shrink * 100) / 100, height: Math.round(nominal.height * shrink * 100) / 100 };
  }

  function loadImage(url) {
    return new Promise(function (resolve, reject) {
      const img = new Image();
      img.decoding = "async";
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error("the image could not be loaded")); };
      img.src = url;
    });
  }

  const filterSupported = (function () {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx || !("filter" in ctx)) return false;
    ctx.filter = "blur(2px)";
    return ctx.filter === "blur(2px)";
  })();

  function mirrored(img, w, h, pad) {
    const canvas = document.createElement("canvas");
    canvas.width = w + 2 * pad; canvas.height = h + 2 * pad;
    const ctx = canvas.getContext("2d");
    [-1, 0, 1].forEach(function (dx) {
      [-1, 0, 1].forEach(function (dy) {
        const sx = dx === 0 ? 1 : -1, sy = dy === 0 ? 1 : -1;
        const tx = pad + (dx === 0 ? 0 : dx < 0 ? 0 : 2 * w), ty = pad + (dy === 0 ? 0 : dy < 0 ? 0 : 2 * h);
        ctx.setTransform(sx, 0, 0, sy, tx, ty);
        ctx.drawImage(img, 0, 0, w, h);
      });
    });
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    return canvas;
  }

  // Box sizes whose three passes approximate a Gaussian of this sigma (Kovesi / Jarosz).
  function boxesForGauss(sigma, n) {
    const wIdeal = Math.sqrt((12 * sigma * sigma / n) + 1);
    let wl = Math.floor(wIdeal); if (wl % 2 === 0) wl--;
    const wu = wl + 2;
    const m = Math.round((12 * sigma * sigma - n * wl * wl - 4 * n * wl - 3 * n) / (-4 * wl - 4));
    const sizes = [];
    for (let i = 0; i < n; i++) sizes.push(i < m ? wl : wu);
    return sizes;
  }

  function boxBlurPass(src, dst, w, h, r, horizontal) {
    const lines = horizontal ? h : w, len = horizontal ? w : h;
    const step = horizontal ? 4 : 4 * w;
    const norm = 1 / (2 * r + 1);
    for (let line = 0; line < lines; line++) {
      const base = horizontal ? line * w * 4 : line * 4;
      for (let c = 0; c < 4; c++) {
        let acc = 0;
        for (let k = -r; k <= r; k++) acc += src[base + Math.min(len - 1, Math.max(0, k)) * step + c];
        for (let i = 0; i < len; i++) {
          dst[base + i * step + c] = acc * norm;
          const out = Math.max(0, i - r), inn = Math.min(len - 1, i + r + 1);
          acc += src[base + inn * step + c] - src[base + out * step + c];
        }
      }
    }
  }

  function blurFallback(canvas, sigma) {
    const ctx = canvas.getContext("2d");
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let a = Float32Array.from(data.data), b = new Float32Array(a.length);
    boxesForGauss(sigma, 3).forEach(function (size) {
      const r = (size - 1) / 2;
      boxBlurPass(a, b, canvas.width, canvas.height, r, true);
      boxBlurPass(b, a, canvas.width, canvas.height, r, false);
    });
    data.data.set(a);
    ctx.putImageData(data, 0, 0);
  }

  // A w x h canvas holding the image blurred with a Gaussian of `sigma` canvas pixels.
  function blurredCanvas(img, w, h, sigma) {
    const out = document.createElement("canvas");
    out.width = w; out.height = h;
    const ctx = out.getContext("2d");
    if (sigma <= 0) { ctx.drawImage(img, 0, 0, w, h); return out; }
    const pad = Math.ceil(3 * sigma);
    const padded = mirrored(img, w, h, pad);
    if (filterSupported) {
      ctx.filter = "blur(" + sigma + "px)";
      ctx.drawImage(padded, -pad, -pad);
      ctx.filter = "none";
    } else {
      blurFallback(padded, sigma);
      ctx.drawImage(padded, -pad, -pad);
    }
    return out;
  }

  /* A stage for one trial: sizes the element, loads the image, maps coordinates. */
  function Stage(stage, trial, opts) {
    const size = fitDisplay(stage, trial.display || { width: trial.width, height: trial.height }, opts);
    stage.innerHTML = "";
    stage.style.width = size.width + "px";
    stage.style.height = size.height + "px";
    const dpr = window.devicePixelRatio || 1;
    const self = {
      el: stage,
      width: size.width,
      height: size.height,
      dpr: dpr,
      // backing-store size of full-resolution canvases on this stage
      backingW: Math.max(1, Math.round(size.width * dpr)),
      backingH: Math.max(1, Math.round(size.height * dpr)),
      stimPerCss: trial.width / size.width,
      image: null,
      ready: loadImage(trial.image_url).then(function (img) { self.image = img; return img; }),
      // Pointer event -> [x, y] in stimulus px, clamped to the image, rounded to 1/100 px.
      toStim: function (ev, el) {
        const rect = (el || stage).getBoundingClientRect();
        const x = Math.min(trial.width, Math.max(0, (ev.clientX - rect.left) * trial.width / rect.width));
        const y = Math.min(trial.height, Math.max(0, (ev.clientY - rect.top) * trial.height / rect.height));
        return [Math.round(x * 100) / 100, Math.round(y * 100) / 100];
      },
      inside: function (ev, el) {
        const rect = (el || stage).getBoundingClientRect();
        return ev.clientX >= rect.left && ev.clientX <= rect.right && ev.clientY >= rect.top && ev.clientY <= rect.bottom;
      },
      display: function () {
        return { width: size.width, height: size.height, dpr: dpr, viewport: [window.innerWidth, window.innerHeight] };
      },
      canvas: function (className) {
        const c = document.createElement("canvas");
        c.width = self.backingW; c.height = self.backingH;
        if (className) c.className = className;
        stage.append(c);
        return c;
      },
      // stimulus px -> backing-store px of a full-stage canvas
      scale: function () { return self.backingW / trial.width; },
      blurred: function (sigmaStim) { return blurredCanvas(self.image, self.backingW, self.backingH, sigmaStim * self.backingW / trial.width); },
    };
    return self;
  }

  function pointerTypeOf(ev) { return ev.pointerType || "mouse"; }

  window.StudyStage = { Stage: Stage, blurredCanvas: blurredCanvas, filterSupported: filterSupported, pointerTypeOf: pointerTypeOf };
})();
