/* The study page: live progress (polls the REST API's progress endpoint, no page reload) and the
 * participant link's copy button. Every value is written with textContent. */
(function () {
  "use strict";
  const section = document.getElementById("progress");

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }
  function pct(part, whole) { return whole ? Math.max(0, Math.min(100, Math.round(100 * (part || 0) / whole))) : 0; }
  function setWidth(el, value) { if (el) el.style.width = value + "%"; }
  function duration(seconds) {
    const minutes = Math.floor(seconds / 60), days = Math.floor(minutes / 1440), hours = Math.floor(minutes / 60) % 24, mins = minutes % 60;
    if (days) return days + " d " + hours + " h";
    if (hours) return hours + " h " + mins + " min";
    return mins ? mins + " min" : "under a minute";
  }
  function estimateText(p) {
    const e = p.estimate;
    if (p.responses.target === 0) return "No target yet: the study has no main stimuli.";
    if (e.remaining <= 0) return "Complete: every stimulus has its responses.";
    if (p.status === "draft") return "Not launched yet.";
    if (p.status === "closed") return "Closed with " + e.remaining + " responses missing: no more are collected.";
    if (p.status === "paused") return "Paused: no estimate until the study is resumed.";
    if (e.seconds_left == null) return "No responses in the last 24 hours yet, so no estimate.";
    const at = new Date(e.completes_at).toISOString().slice(0, 16).replace("T", " ");
    return "About " + duration(e.seconds_left) + " more (" + e.remaining + " responses at " +
      e.responses_per_hour.toFixed(1) + " per hour), around " + at + " UTC.";
  }

  function render(p) {
    section.querySelectorAll("[data-field]").forEach(function (el) {
      if (el.closest("[data-stimulus-row]")) return;
      const name = el.getAttribute("data-field");
      const value = name === "responses.percent" ? pct(p.responses.done, p.responses.target) : get(p, name);
      if (value !== undefined) el.textContent = value;
    });
    const responses = document.getElementById("bar-responses");
    responses.setAttribute("aria-valuenow", p.responses.done);
    responses.setAttribute("aria-valuemax", p.responses.target);
    setWidth(responses.querySelector("[data-seg]"), pct(p.responses.done, p.responses.target));
    ["completed", "active", "excluded"].forEach(function (k) {
      setWidth(document.querySelector("#bar-participants [data-seg='" + k + "']"), pct(p.participants[k], p.participants.started));
    });
    Object.keys(p.jobs.by_status).forEach(function (k) {
      setWidth(document.querySelector("#bar-jobs [data-seg='" + k + "']"), pct(p.jobs.by_status[k], p.jobs.total));
    });
    const failed = document.getElementById("failed-jobs");
    failed.replaceChildren.apply(failed, p.jobs.failed.map(function (j) {
      const li = document.createElement("li"), badge = document.createElement("span"), err = document.createElement("span");
      badge.className = "badge failed"; badge.textContent = "failed";
      err.className = "error"; err.textContent = j.error.length > 300 ? j.error.slice(0, 299) + "…" : j.error;
      li.append(badge, " " + j.method + " · " + j.model + " · image " + j.image_sha256.slice(0, 8) + " (" + j.attempts +
        " attempt" + (j.attempts === 1 ? "" : "s") + "): ", err);
      return li;
    }));
    document.getElementById("estimate-text").textContent = estimateText(p);
    p.stimuli.forEach(function (s) {
      const row = section.querySelector("[data-stimulus-row='" + s.id + "']");
      if (row) {
        Object.keys(s.by_task_kind).forEach(function (k) {
          const cell = row.querySelector("[data-kind-count='" + k + "']");
          if (cell) cell.textContent = s.by_task_kind[k];
        });
        row.querySelector("[data-field='responses']").textContent = s.responses;
        const bar = row.querySelector("[role=progressbar]");
        bar.setAttribute("aria-valuenow", s.responses);
        setWidth(bar.querySelector("[data-seg]"), pct(s.responses, s.target));
      }
      const card = document.querySelector("[data-stimulus-responses='" + s.id + "']");
      if (card) card.textContent = s.responses;
    });
    const status = document.getElementById("study-status");
    if (status && status.textContent !== p.status) status.textContent = p.status + " (reload for the buttons)";
    document.getElementById("progress-updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  async function poll() {
    try {
      const res = await fetch(section.getAttribute("data-progress-url"), { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) render(await res.json());
      else document.getElementById("progress-updated").textContent = "could not update (" + res.status + ")";
    } catch (err) {
      document.getElementById("progress-updated").textContent = "could not update (offline?)";
    }
  }

  if (section) {
    const every = parseInt(section.getAttribute("data-poll-ms"), 10) || 5000;
    poll();
    setInterval(function () { if (!document.hidden) poll(); }, every);
  }

  const copy = document.getElementById("copy-link");
  if (copy) {
    copy.addEventListener("click", async function () {
      const input = document.querySelector(copy.getAttribute("data-copy"));
      const status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(input.value);
        status.textContent = "Copied.";
      } catch (err) {
        input.select();
        status.textContent = document.execCommand && document.execCommand("copy") ? "Copied." : "Select the link and copy it (Ctrl+C).";
      }
    });
  }
})();
