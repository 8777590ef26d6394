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

/** USD as people read it: "$0.12", "$0.0042" under a cent. */
function amount(value) {
  const n = Number(value || 0);
  return `$${n.toFixed(n && n < 0.01 ? 4 : 2)}`;
}

/**
 * A task's total cost as text (the server's one definition: the sum over every execution):
 * "$0.12"; "~$0.12" when some of it was estimated from the price table; "at least $0.12" when
 * an execution's cost is unknown (an unpriced model); "cost unknown" when none is known; ""
 * when nothing was spent yet. Uses the task body's `cost_usd_total` / `cost_known` /
 * `cost_estimated` (GET /api/tasks sends them); without them, the `executions` given.
 * `executions`, when given, also tell a task that ran for $0 (shown) from one that never ran.
 */
export function taskCost(task, executions = null) {
  let total = task.cost_usd_total;
  let known = task.cost_known !== false;
  let estimated = task.cost_estimated === true;
  if (typeof total !== "number") {
    if (!Array.isArray(executions) || !executions.length) return "";
    total = executions.reduce((sum, e) => sum + (e.cost_usd || 0), 0);
    known = executions.every((e) => e.cost_known !== false);
    estimated = executions.some((e) => e.cost_estimated);
  }
  const text = `${estimated ? "~" : ""}${amount(total)}`;
  if (!known) return total > 0 ? `at least ${text}` : "cost unknown";
  const ran = Array.isArray(executions) && executions.some((e) => e.end_time);
  return total > 0 || estimated || ran ? text : "";
}

/** One execution's cost: "$0.12", "~$0.12" (estimated), "unknown" (no price for its model). */
export function executionCost(execution) {
  if (execution.cost_known === false) return "unknown";
  return `${execution.cost_estimated ? "~" : ""}${amount(execution.cost_usd)}`;
}

/** "1 file", "3 files": a count with its noun, singular or plural. */
export function plural(count, noun, many = `${noun}s`) {
  return `${count} ${count === 1 ? noun : many}`;
}
