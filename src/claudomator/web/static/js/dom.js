// Building DOM safely: text always goes through textContent / text nodes, never innerHTML.

import { between } from "./format.js";

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
  RUNNING: "►",
  BLOCKED: "?",
  READY: "★",
  COMPLETED: "✓",
  FAILED: "✗",
  TIMED_OUT: "◷",
  BUDGET_EXCEEDED: "$",
  CANCELLED: "■",
};

/** The state as text (with a symbol), so it reads without colour. The symbols are plain text
 * characters (DejaVu has them), never emoji: those show as boxes without an emoji font. */
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

/** "8 s", "1 min 30 s", "2 h": from `start` to `end` (or now). */
export function duration(start, end) {
  return between(start, end);
}

export function money(value, estimated = false) {
  const amount = Number(value || 0);
  return `${estimated ? "~" : ""}$${amount.toFixed(amount && amount < 0.01 ? 4 : 2)}`;
}

/** A problem's field as people read it: "name", "agent.instructions" (no "body." prefix). */
export function fieldName(problem) {
  return String(problem.field || "").replace(/^body\./, "");
}

/**
 * A paragraph showing an error, announced to screen readers. With the API's `problems`, it
 * lists them as "field: message" (not the server's "request:task:field: message" lines);
 * `placed` problems (shown at their fields already) are left out of the list.
 */
export function errorBox(error, prefix = "Error", placed = []) {
  const problems = error.problems || [];
  const rest = problems.filter((p) => !placed.includes(p));
  let message = error.message || String(error);
  // the server's message is its problems as "request:task:field: message" lines: say how many
  if (problems.length && problems.some((p) => p.message && message.includes(p.message))) {
    const count = `${problems.length} problem${problems.length > 1 ? "s" : ""}`;
    message = rest.length === problems.length ? `${count}:` : rest.length ? `${count}, marked at the fields and:` : `${count}, marked at the fields.`;
  }
  const box = h("div", { class: "error", role: "alert" }, h("strong", {}, `${prefix}: `), message);
  if (rest.length) {
    box.append(h("ul", {}, rest.map((p) => h("li", {}, fieldName(p) ? `${fieldName(p)}: ${p.message}` : p.message))));
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
let flashed = null; // {task, state, navigations}: what the message on screen describes

/**
 * A short status message under the header (polite live region). It goes away after a while,
 * on navigation (`survives`: how many navigations it outlives, 1 for "done, now go there"), and
 * when the task it describes (`task`, `state`) changes state (see `flashTask`).
 */
export function flash(message, { task = null, state = null, survives = 0 } = {}) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.hidden = false;
  flashed = { task, state, navigations: survives };
  clearTimeout(flashTimer);
  flashTimer = setTimeout(clearFlash, 8000);
}

export function clearFlash() {
  const box = document.getElementById("flash");
  clearTimeout(flashTimer);
  flashed = null;
  if (box) {
    box.hidden = true;
    box.textContent = "";
  }
}

/** A page changes: the message goes unless it was meant to outlive this navigation. */
export function flashNavigated() {
  if (!flashed) return;
  if (flashed.navigations > 0) flashed.navigations -= 1;
  else clearFlash();
}

/** Task `id` is now in `state`: a message about an earlier state of it is out of date. */
export function flashTask(id, state) {
  if (flashed?.task === id && flashed.state && flashed.state !== state) clearFlash();
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
