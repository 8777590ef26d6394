// Building DOM safely: text always goes through textContent / text nodes, never innerHTML.

/**
 * h("button", {class: "x", onclick: fn, type: "button"}, "text", child, [more])
 * Attributes starting with "on" become listeners; `false`/`null`/`undefined` are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      element.className = value;
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (key === "value" && "value" in element) {
      element.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled" || key === "open") {
      element[key] = Boolean(value);
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace the children of `element` (null / false children are skipped). */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** A link handled by the client-side router. */
export function link(href, ...children) {
  return h("a", { href, "data-nav": true }, ...children);
}

const DONE = new Set(["COMPLETED"]);
const FAILED = new Set(["FAILED", "TIMED_OUT", "BUDGET_EXCEEDED", "CANCELLED"]);

export function stateGroup(state) {
  if (DONE.has(state)) return "done";
  if (FAILED.has(state)) return "failed";
  return state.toLowerCase();
}

const STATE_SYMBOL = {
  PENDING: "✎",
  QUEUED: "…",
  RUNNING: "▶",
  BLOCKED: "?",
  READY: "★",
  COMPLETED: "✓",
  FAILED: "✗",
  TIMED_OUT: "⏱",
  BUDGET_EXCEEDED: "$",
  CANCELLED: "■",
};

/** The state as text (with a symbol), so it reads without colour. */
export function stateBadge(state) {
  return h(
    "span",
    { class: `state state-${stateGroup(state)}`, dataset: { state } },
    h("span", { "aria-hidden": "true" }, `${STATE_SYMBOL[state] || "•"} `),
    state.replace("_", " "),
  );
}

export function shortId(id) {
  return (id || "").slice(0, 8);
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function ago(value) {
  if (!value) return "";
  const seconds = Math.max(0, (Date.now() - new Date(value).getTime()) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function duration(start, end) {
  if (!start) return "—";
  const seconds = Math.max(0, ((end ? new Date(end) : new Date()) - new Date(start)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function money(value, estimated = false) {
  const amount = Number(value || 0);
  return `${estimated ? "~" : ""}$${amount.toFixed(amount && amount < 0.01 ? 4 : 2)}`;
}

/** A paragraph showing an error (with the API's problems listed), announced to screen readers. */
export function errorBox(error, prefix = "Error") {
  const box = h("div", { class: "error", role: "alert" }, h("strong", {}, `${prefix}: `), error.message || String(error));
  const message = error.message || "";
  const problems = (error.problems || []).filter((p) => !message.includes(p.message) || error.problems.length > 1);
  if (problems.length) {
    box.append(
      h(
        "ul",
        {},
        problems.map((p) => h("li", {}, `${p.task ? `${p.task}: ` : ""}${p.field}: ${p.message}`)),
      ),
    );
  }
  return box;
}

/** Show an error (or nothing) in `slot`. */
export function showError(slot, error, prefix) {
  clear(slot);
  if (error) slot.append(errorBox(error, prefix));
}

/** Run `action` with `button` disabled and labelled busy; errors go to `slot`. */
export async function busy(button, slot, action, busyLabel) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (busyLabel) button.textContent = busyLabel;
  if (slot) clear(slot);
  try {
    return await action();
  } catch (error) {
    if (slot) showError(slot, error);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

let flashTimer = null;

/** A short status message under the header (polite live region). */
export function flash(message) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => {
    box.hidden = true;
  }, 6000);
}

/** A labelled form field; returns {wrap, input}. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const parts = [h("label", { for: id }, label), input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field", dataset: { field: input.name || "" } }, parts);
}

export function setTitle(text) {
  document.title = text ? `${text} · Claudomator` : "Claudomator";
}
