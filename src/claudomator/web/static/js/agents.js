// Agents: which can run now, which are rate-limited or out of quota, and their failures.

import { get } from "./api.js";
import { clear, errorBox, h, setTitle, when, fill } from "./dom.js";

export async function render(main, { signal }) {
  setTitle("Agents");
  const body = h("div");
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Agents"), refresh),
    h("p", { class: "muted" }, "Whether each agent can run here (its CLI found, credentials found, configured) and its health. A rate-limited agent waits; one out of quota is skipped until its reset."),
    body,
  );

  async function load() {
    let agents;
    try {
      agents = await get("/api/agents", { signal });
    } catch (error) {
      fill(body, errorBox(error, "Could not load the agents"));
      return;
    }
    clear(body);
    const now = Date.now();
    const rows = agents.map((r) => {
      const a = r.status;
      const limited = a.limited_until && new Date(a.limited_until) > now;
      const unavailable = a.unavailable_until && new Date(a.unavailable_until) > now;
      const state = unavailable ? "✗ out of quota" : limited ? "⏸ rate-limited" : r.usable ? "✓ ready" : "✗ cannot run";
      const notes = r.usable ? [r.binary, r.credentials_from && `credentials from ${r.credentials_from}`, ...r.warnings].filter(Boolean) : r.reasons;
      return h(
        "tr",
        { dataset: { agent: r.agent, usable: String(r.usable) } },
        h("th", { scope: "row" }, r.agent),
        h("td", {}, h("strong", {}, state)),
        h("td", { class: "wrap" }, notes.join("; ") || "—"),
        h("td", {}, limited ? when(a.limited_until) : "—"),
        h("td", {}, unavailable ? when(a.unavailable_until) : "—"),
        h("td", {}, String(a.consecutive_failures)),
        h("td", {}, String(a.rate_limit_strikes)),
        h("td", { class: "wrap" }, a.last_error || "—"),
      );
    });
    body.append(
      h(
        "div",
        { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "Agents" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Agent", "State", "Details", "Limited until", "Unavailable until", "Failures in a row", "Rate-limit strikes", "Last error"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  refresh.addEventListener("click", load);
  await load();
}
