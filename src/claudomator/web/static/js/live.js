// Small live touches on a page: running times that tick, table cells that carry their column's
// name (so a narrow screen can show rows as labelled cards).

import { between } from "./format.js";

/**
 * Every second until `signal` aborts, rewrite each `[data-tick-since]` element under `root` to
 * "running <time since>" (elements come and go with redraws; only the present ones tick).
 */
export function tick(root, signal) {
  const update = () => {
    for (const element of root.querySelectorAll("[data-tick-since]")) {
      element.textContent = `running ${between(element.dataset.tickSince)}`;
    }
  };
  const timer = setInterval(update, 1000);
  signal.addEventListener("abort", () => clearInterval(timer));
  update();
}

/** Give each body cell of `table` a `data-label`: the text of its column's header. */
export function labelCells(table) {
  if (!table) return;
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, index) => {
      if (cell.tagName === "TD") cell.dataset.label = names[index] || "";
    });
  }
}
