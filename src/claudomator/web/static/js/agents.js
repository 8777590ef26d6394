// Agents: which can run now, which are rate-limited or out of quota, and their failures.

import { get } from "./api.js";
import { clear, errorBox, h, setTitle, when, fill } from "./dom.js";

export async function render(main, { signal }) {
  setTitle("Agents");
  const body = h("div");
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Agents"), refresh),
    h("p", { class: "muted" }, "Agents appear once they have run or been limited. A rate-limited agent waits; one out of quota is skipped until its reset."),
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
    if (!agents.length) {
      body.append(h("p", { class: "muted" }, "No agent has run yet."));
      return;
    }
    const now = Date.now();
    const rows = agents.map((a) => {
      const limited = a.limited_until && new Date(a.limited_until) > now;
      const unavailable = a.unavailable_until && new Date(a.unavailable_until) > now;
      const state = unavailable ? "✗ out of quota" : limited ? "⏸ rate-limited" : "✓ active";
      return h(
        "tr",
        { dataset: { agent: a.agent } },
        h("th", { scope: "row" }, a.agent),
        h("td", {}, h("strong", {}, state)),
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
          h("thead", {}, h("tr", {}, ["Agent", "State", "Limited until", "Unavailable until", "Failures in a row", "Rate-limit strikes", "Last error"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  refresh.addEventListener("click", load);
  await load();
}
