/* The study form's model x method picker: a table of checkboxes over the "Models and methods (JSON)"
 * field. The JSON stays the truth (it is what is posted and validated, and it carries parameters):
 * ticking a box adds {"model", "method", "params": {}} (the method's defaults), unticking removes
 * that pair's entries, and editing the JSON re-ticks the boxes. Without JavaScript the JSON field
 * works alone. Every text is written with textContent. */
(function () {
  "use strict";
  const area = document.getElementById("id_explain_config");
  const data = document.getElementById("explain-choices");
  if (!area || !data) return;
  const choices = JSON.parse(data.textContent);
  const boxes = [];

  function entries() {
    const text = area.value.trim();
    if (!text) return [];
    const value = JSON.parse(text);
    if (!Array.isArray(value)) throw new Error("not a list");
    return value;
  }
  function same(entry, model, method) {
    return entry && typeof entry === "object" && (entry.model || choices.default_model) === model && entry.method === method;
  }
  function write(list) {
    area.value = list.length ? "[\n" + list.map(function (e) { return "  " + JSON.stringify(e); }).join(",\n") + "\n]" : "[]";
    area.rows = Math.min(12, Math.max(3, list.length + 2));
  }

  const note = document.createElement("p");
  note.className = "note picker-note";
  note.setAttribute("role", "status");

  function sync() {
    let list;
    try {
      list = entries();
      note.textContent = "";
    } catch (e) {
      note.textContent = "The JSON below does not parse (" + e.message + "): fix it there, then the boxes follow again.";
      boxes.forEach(function (b) { b.input.disabled = true; });
      return;
    }
    boxes.forEach(function (b) {
      b.input.checked = list.some(function (e) { return same(e, b.model, b.method); });
      b.input.disabled = area.disabled;
    });
  }

  function toggle(box) {
    let list;
    try { list = entries(); } catch (e) { sync(); return; }
    if (box.input.checked) list.push({model: box.model, method: box.method, params: {}});
    else list = list.filter(function (e) { return !same(e, box.model, box.method); });
    write(list);
    sync();
  }

  const available = choices.models.filter(function (m) { return !m.unavailable; });
  const unavailable = choices.models.filter(function (m) { return m.unavailable; });
  const table = document.createElement("table");
  table.className = "report picker";
  table.id = "explain-picker";
  const caption = document.createElement("caption");
  caption.textContent = "Tick each method a model should explain the stimuli with (its default parameters; change them in the JSON).";
  table.appendChild(caption);
  const head = table.createTHead().insertRow();
  ["Method"].concat(available.map(function (m) { return m.key; }), ["Default parameters"]).forEach(function (text, i) {
    const th = document.createElement("th");
    th.textContent = text;
    if (i > 0 && i <= available.length) th.title = available[i - 1].description;
    head.appendChild(th);
  });
  const body = table.createTBody();
  choices.methods.forEach(function (method) {
    const row = body.insertRow();
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = method.label;
    row.appendChild(name);
    available.forEach(function (model) {
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = model.key + ":" + method.key;
      input.setAttribute("aria-label", method.label + " on " + model.key);
      row.insertCell().appendChild(input);
      const box = {input: input, model: model.key, method: method.key};
      input.addEventListener("change", function () { toggle(box); });
      boxes.push(box);
    });
    const defaults = row.insertCell();
    defaults.className = "defaults";
    defaults.textContent = Object.keys(method.defaults).map(function (k) { return k + "=" + JSON.stringify(method.defaults[k]); }).join(", ") || "none";
  });
  const wrap = document.createElement("div");
  wrap.className = "scroll";
  wrap.appendChild(table);
  area.parentNode.insertBefore(wrap, area);
  if (unavailable.length) {
    const details = document.createElement("details");
    details.className = "note";
    const summary = document.createElement("summary");
    summary.textContent = "Not on this server: " + unavailable.map(function (m) { return m.key; }).join(", ");
    details.appendChild(summary);
    const list = document.createElement("ul");
    unavailable.forEach(function (m) {
      const item = document.createElement("li");
      item.textContent = m.unavailable;
      list.appendChild(item);
    });
    details.appendChild(list);
    area.parentNode.insertBefore(details, area);
  }
  area.parentNode.insertBefore(note, area);
  area.addEventListener("input", sync);
  try { write(entries()); } catch (e) { /* leave what the researcher wrote as it is */ }
  sync();
})();
