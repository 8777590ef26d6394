// Agents: which can run now, which are rate-limited or out of quota, and their failures.

import { get } from "./api.js";
import { clear, errorBox, h, setTitle, fill } from "./dom.js";

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
    // the same facts as `claudomator agents`: state, details and last error come from the server
    const icons = { ready: "✓", "rate-limited": "⏸", "out of quota": "✗", "cannot run": "✗" };
    const rows = agents.map((r) =>
      h(
        "tr",
        { dataset: { agent: r.agent, usable: String(r.usable), state: r.state } },
        h("th", { scope: "row" }, r.agent),
        h("td", {}, h("strong", {}, `${icons[r.state] || "✗"} ${r.state}`)),
        h("td", { class: "wrap" }, r.details.join("; ") || "—"),
        h("td", {}, String(r.status.consecutive_failures)),
        h("td", { class: "wrap" }, r.last_error || "—"),
      ),
    );
    body.append(
      h(
        "div",
        { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "Agents" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Agent", "State", "Details", "Failures in a row", "Last error"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  refresh.addEventListener("click", load);
  await load();
}
