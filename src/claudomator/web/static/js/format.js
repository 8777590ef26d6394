// Numbers people read: durations ("8 s", "1 min 30 s", "2 h") and a task's cost.

/** `seconds` as people say it: "8 s", "1 min 30 s", "2 h", "1 h 5 min", "3 d 2 h". */
export function seconds(value) {
  const total = Math.max(0, Math.round(Number(value) || 0));
  if (total < 60) return `${total} s`;
  const parts = [];
  const units = [
    [86400, "d"],
    [3600, "h"],
    [60, "min"],
    [1, "s"],
  ];
  let rest = total;
  for (const [size, unit] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count) parts.push(`${count} ${unit}`);
  }
  // two units at most: "1 h 5 min", never "1 h 5 min 3 s"
  return parts.slice(0, 2).join(" ");
}

/** The time from `start` to `end` (or to now), as `seconds()` says it; "—" without a start. */
export function between(start, end) {
  if (!start) return "—";
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  return seconds(ms / 1000);
}

/**
 * A task's total cost as text, or "" when nothing is known. Uses the task body's
 * `cost_usd_total` / `cost_known` when the server sends them; else the cost fields of the
 * executions given (the task page has them), else nothing.
 */
export function taskCost(task, executions = null) {
  const amount = (value) => {
    const n = Number(value || 0);
    return `$${n.toFixed(n && n < 0.01 ? 4 : 2)}`;
  };
  if (typeof task.cost_usd_total === "number") {
    if (task.cost_known === false) return task.cost_usd_total > 0 ? `at least ${amount(task.cost_usd_total)}` : "cost unknown";
    return amount(task.cost_usd_total);
  }
  if (Array.isArray(executions) && executions.length) {
    const total = executions.reduce((sum, e) => sum + (e.cost_usd || 0), 0);
    return `${executions.some((e) => e.cost_estimated) ? "~" : ""}${amount(total)}`;
  }
  return "";
}
