/* The participant's flow on one page: [screen calibration] -> instructions with an example ->
 * one practice trial (checked, not analysed) -> the trials (each saved on submit, with retries) ->
 * the completion page, reached only after the last answer is saved.
 * The server is the memory: a reload resumes at the open trial, or the next unanswered one. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("task-config").textContent);
  const $ = function (id) { return document.getElementById(id); };
  const widgets = { paint: window.PaintTask, bubble: window.BubbleTask, mouse: window.MouseTask };
  let trial = null, widget = null, clientUuid = null, busy = false, practice = false, timer = null, deadline = 0, started = false;
  let onPracticeDone = null;

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = kind || "muted"; }
  function show(id) { ["calibration", "instructions", "practice-done", "trial", "finished"].forEach(function (s) { $(s).hidden = s !== id; }); }
  function clicked(id) { return new Promise(function (resolve) { $(id).addEventListener("click", resolve, { once: true }); }); }
  function progress(p) {
    if (!p) return;
    const pct = p.total ? Math.min(100, Math.round(100 * p.done / p.total)) : 0;
    $("progress-bar").style.width = pct + "%";
    $("progress-text").textContent = p.done + " / " + p.total;
  }

  // Network calls retry with backoff on connection errors, 429 and 5xx; 4xx answers come back as they are.
  async function call(url, options) {
    const delays = [500, 1000, 2000, 4000, 8000];
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(url, options);
        if (res.status < 500 && res.status !== 429) return res;
        if (attempt >= delays.length) return res;
      } catch (err) {
        if (attempt >= delays.length) throw err;
      }
      status("Connection problem, retrying…", "muted");
      await sleep(delays[attempt]);
    }
  }
  // A submitted answer is kept (in memory and in localStorage, so a reload sends it again) until the
  // server answers it. 5xx, 429 and network errors are retried with exponential backoff, forever,
  // always with the same client UUID, so a retry never stores the answer twice.
  const PENDING_KEY = "studyserver-pending-" + config.token;
  const SAVE_DELAYS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
  const SAVE_QUIET_ATTEMPTS = 3;
  function pendingKeep(pending) { try { localStorage.setItem(PENDING_KEY, JSON.stringify(pending)); } catch (err) { /* memory only */ } }
  function pendingDrop() { try { localStorage.removeItem(PENDING_KEY); } catch (err) { /* nothing kept */ } }
  function pendingLeft() { try { return JSON.parse(localStorage.getItem(PENDING_KEY) || "null"); } catch (err) { return null; } }
  async function save(pending) {
    pendingKeep(pending);
    for (let attempt = 0; ; attempt++) {
      let res = null;
      try {
        res = await fetch(pending.url, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(pending.body) });
      } catch (err) { res = null; }
      if (res && res.status < 500 && res.status !== 429) { pendingDrop(); return res; }
      if (attempt < SAVE_QUIET_ATTEMPTS) status("Saving… retrying", "muted");
      else status("Could not save — check your connection; your drawing is kept. Still trying…", "error");
      await sleep(SAVE_DELAYS[Math.min(attempt, SAVE_DELAYS.length - 1)]);
    }
  }

  function postJSON(url, body) {
    return call(url, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body) });
  }

  // The study closed (or the participant finished) under the page: its completion page says what now.
  function leave() {
    show("finished");
    window.location.assign(config.doneUrl);
    return new Promise(function () {});  // nothing more happens on this page
  }

  async function calibrate() {
    show("calibration");
    const measured = await new Promise(function (resolve) { window.Calibration($("calibration"), resolve); });
    const res = await postJSON(config.calibrationUrl, measured);
    if (res.status === 410) return leave();
    if (!res.ok && res.status !== 409) throw new Error("the calibration was not saved (" + res.status + ")");
  }

  function notice(text) { $("notice").textContent = text || ""; $("notice").hidden = !text; }

  async function next() {
    const res = await call(config.nextUrl, { headers: { Accept: "application/json" } });
    if (res.status === 409) {
      const body = await res.clone().json().catch(function () { return {}; });
      if (body.error === "study_paused") {
        // Keep the page: the study continues where it stopped once the researchers resume it.
        notice(body.detail || "The study is paused. Please keep this page open.");
        await sleep(20000);
        return next();
      }
      notice("");
      await calibrate();
      return next();
    }
    notice("");
    if (!res.ok) throw new Error("could not load the next image (" + res.status + ")");
    return arrived(await res.json());
  }

  // What GET next answers (also sent along with a saved answer): the trial, or null when done
  // (finished, or the study closed under the participant: the completion page says which).
  function arrived(data) {
    progress(data.progress);
    if (data.done) {
      leave();
      return null;
    }
    return data.trial;
  }

  function stopTimer() { if (timer) { clearInterval(timer); timer = null; } $("timer").textContent = ""; }
  function startTimer(ms) {
    deadline = performance.now() + ms;
    const tick = function () {
      const left = deadline - performance.now();
      $("timer").textContent = Math.max(0, Math.ceil(left / 1000)) + " s left";
      if (left <= 0) { stopTimer(); timeUp(); }
    };
    tick();
    timer = setInterval(tick, 100);
  }
  function timeUp() {
    if (!widget || !started) return;
    widget.stop();
    const problem = widget.problem();
    if (!problem) { submit(); return; }
    status("Time is up. " + problem + " Press Try again to see the image again.", "error");
    $("submit").hidden = true; $("retry").hidden = false;
  }

  function prompt(t) {
    const label = t.label || "the object";
    $("label").textContent = label;
    $("practice-badge").hidden = !practice;
  }

  async function begin(t, isPractice) {
    if (widget && widget.destroy) widget.destroy();
    stopTimer();
    trial = t; practice = isPractice; clientUuid = uuid4(); started = false;
    show("trial");
    prompt(t);
    const make = widgets[t.task_kind];
    widget = make($("stage"), $("tools"), t, { onChange: function () { status(""); } });
    $("submit").hidden = !!widget.fixedTime; $("submit").disabled = true;
    $("retry").hidden = true;
    status("Loading the image…");
    try { await widget.ready; } catch (err) { status(err.message + ". Reload the page to try again.", "error"); return; }
    status("");
    if (widget.gated) {
      $("stage-wrap").classList.add("veiled");
      $("show").hidden = false;
      $("show").textContent = widget.timeLimitMs ? "Show the image (" + Math.round(widget.timeLimitMs / 1000) + " s)" : "Show the image";
      await clicked("show");
      $("show").hidden = true;
      $("stage-wrap").classList.remove("veiled");
    }
    widget.start(); started = true;
    $("submit").disabled = false;
    if (widget.timeLimitMs) startTimer(widget.timeLimitMs);
  }

  async function submit() {
    if (busy || !trial || !started) return;
    const problem = widget.problem();
    if (problem) { status(problem, "error"); return; }
    busy = true; $("submit").disabled = true; status("Saving…");
    const timed = !!widget.timeLimitMs;
    if (timed) { stopTimer(); widget.stop(); }
    const payload = widget.payload();
    try {
      if (practice) {
        const res = await postJSON(config.practiceUrl, { payload: payload });
        const body = await res.json().catch(function () { return {}; });
        if (res.ok) { status("", "muted"); onPracticeDone(); }
        else if (res.status === 410) { leave(); }
        else if (timed) { status((body.detail || ("The practice answer was not accepted (" + res.status + ").")) + " Press Try again.", "error"); $("submit").hidden = true; $("retry").hidden = false; }
        else { status(body.detail || ("The practice answer was not accepted (" + res.status + ")."), "error"); }
        return;
      }
      const url = config.submitUrlTemplate.replace("{id}", String(trial.id));
      const res = await save({ url: url, body: { client_uuid: clientUuid, payload: payload, duration_ms: widget.elapsed() } });
      if (res.ok) {
        status("Saved.", "ok");
        const saved = await res.json().catch(function () { return {}; });
        const t = saved.next ? arrived(saved.next) : await next();
        if (t) begin(t, false);
      } else {
        const err = await res.json().catch(function () { return {}; });
        if (res.status === 409 || res.status === 410 || res.status === 404) {
          status(err.detail || "", "muted");
          const t = await next(); if (t) begin(t, false);
        } else if (timed) {
          status((err.detail || ("This answer was not accepted (" + res.status + ").")) + " Press Try again.", "error");
          $("submit").hidden = true; $("retry").hidden = false;
        } else {
          status(err.detail || ("This answer was not accepted (" + res.status + ")."), "error");
        }
      }
    } catch (err) {
      status("We could not reach the server. Your answer is kept: check your connection and press Submit again.", "error");
      $("submit").hidden = false;
    } finally {
      busy = false; $("submit").disabled = false;
    }
  }

  async function runTrials() {
    const t = await next();
    if (t) begin(t, false);
  }

  async function instructions() {
    const res = await call(config.practiceUrl, { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error("could not load the instructions (" + res.status + ")");
    const spec = await res.json();
    show("instructions");
    const f = Math.min(1, 360 / spec.display.width);
    const exampleSpec = Object.assign({}, spec, { display: { width: spec.display.width * f, height: spec.display.height * f } });
    const example = widgets[spec.task_kind]($("example-stage"), document.createElement("div"), exampleSpec, { example: true, reserveHeight: 420 });
    example.ready.then(function () { if (spec.region) example.example(spec.region); }).catch(function () {});
    $("start").textContent = spec.done ? "Start" : "Start the practice";
    await clicked("start");
    if (!spec.done) {
      await new Promise(function (resolve) { onPracticeDone = resolve; begin(spec, true); });
      if (widget && widget.destroy) widget.destroy();
      show("practice-done");
      await clicked("begin");
    }
  }

  $("submit").addEventListener("click", submit);
  $("retry").addEventListener("click", function () { if (trial) begin(trial, practice); });

  (async function main() {
    try {
      const left = pendingLeft();  // an answer sent before a reload, not yet saved
      if (left) { status("Saving your last answer…"); await save(left); status(""); }
      if (config.needsCalibration) await calibrate();
      if (!config.resumed) await instructions();
      await runTrials();
    } catch (err) {
      status(err.message, "error");
      const box = $("fatal"); box.hidden = false; box.textContent = err.message + " Reload the page to continue where you left off.";
    }
  })();
})();
