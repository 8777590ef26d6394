// The board: tasks by state, live from the events stream, filtered by project, story and tag.

import { followEvents, get } from "./api.js";
import { ago, clear, errorBox, field, h, link, setTitle, shortId, stateBadge, stateGroup, fill } from "./dom.js";
import { taskCost } from "./format.js";

const COLUMNS = [
  ["pending", "Drafts", "Saved with “Save as draft”; submit them to queue."],
  ["queued", "Queued", "Waiting for a free slot or for their dependencies."],
  ["running", "Running", "An agent is working on them."],
  ["blocked", "Blocked", "The agent asked a question: answer it to resume."],
  ["ready", "Ready for review", "Accept or reject the delivered branch."],
  ["done", "Done", "Completed."],
  ["failed", "Failed", "Failed, timed out, over budget or cancelled: open one to run it again."],
];
const LIMIT = 300;

function question(task) {
  try {
    const parsed = JSON.parse(task.question || "{}");
    return parsed.text || task.question;
  } catch {
    return task.question;
  }
}

const ENDED = new Set(["COMPLETED", "FAILED", "TIMED_OUT", "BUDGET_EXCEEDED", "CANCELLED"]);

/** The project a card names: its name when `projects` (dir -> name) knows the directory, else
 * the directory's last part; "" for a scratch repository. */
export function projectLabel(task, projects = new Map()) {
  const dir = (task.agent.project_dir || "").replace(/\/+$/, "");
  if (!dir) return "";
  return projects.get(dir) || projects.get(`${dir}/`) || dir.split("/").pop() || dir;
}

/** A summary's first line that says something (not a "## Summary" heading or a rule). */
export function summaryLine(text) {
  for (const raw of String(text || "").split("\n")) {
    const line = raw.replace(/^\s*(#+|[-*>]|\d+\.)\s*/, "").trim();
    if (line && !/^summary:?$/i.test(line) && !/^[-=*_]{3,}$/.test(line)) return line;
  }
  return "";
}

export function card(task, projects = new Map()) {
  const blocked = task.state === "BLOCKED";
  const bits = [];
  const project = projectLabel(task, projects);
  if (project) bits.push(project);
  if (task.agent.type) bits.push(task.agent.type + (task.agent.model ? ` · ${task.agent.model}` : ""));
  if (task.priority !== "normal") bits.push(`${task.priority} priority`);
  const cost = taskCost(task);
  if (cost) bits.push(cost);
  const summary = ENDED.has(task.state) ? summaryLine(task.summary) : "";
  return h(
    "li",
    { class: `card${blocked ? " card-blocked" : ""}`, dataset: { taskId: task.id, state: task.state } },
    h("div", { class: "card-head" }, stateBadge(task.state), h("span", { class: "muted id" }, shortId(task.id))),
    h("h3", {}, link(`/tasks/${task.id}`, task.name)),
    blocked ? h("p", { class: "needs" }, h("strong", {}, "Needs your answer: "), question(task)) : null,
    task.state === "READY" ? h("p", { class: "needs" }, h("strong", {}, "Waiting for your review.")) : null,
    task.waiting_reason ? h("p", { class: "needs waiting-reason" }, h("strong", {}, "Waiting: "), task.waiting_reason) : null,
    summary ? h("p", { class: "card-summary", title: task.summary.trim() }, summary) : null,
    task.tags.length ? h("p", { class: "tags" }, task.tags.map((t) => h("span", { class: "tag" }, `#${t}`))) : null,
    h("p", { class: "muted small card-meta" }, [...bits, `updated ${ago(task.updated_at)}`].join(" · ")),
  );
}

// What an agent needs to run, from GET /api/agents (readiness decided by the server).
function agentLine(a) {
  if (!a.usable) return h("li", { dataset: { agent: a.agent } }, h("strong", {}, `${a.agent}: cannot run`), ` — ${a.reasons.join("; ")}`);
  const notes = [a.binary, a.credentials_from && `credentials from ${a.credentials_from}`, ...a.warnings].filter(Boolean);
  return h("li", { dataset: { agent: a.agent } }, h("strong", {}, `${a.agent}: ready`), notes.length ? ` — ${notes.join("; ")}` : "");
}

// The empty board: what is missing, and how to create the first task.
function welcome(agents) {
  const usable = agents.filter((a) => a.usable);
  return h(
    "section",
    { class: "welcome", "aria-labelledby": "welcome-head" },
    h("h2", { id: "welcome-head" }, "No tasks yet"),
    usable.length
      ? h("p", {}, `Ready to run with ${usable.map((a) => a.agent).join(", ")}.`)
      : h("p", { class: "needs" }, h("strong", {}, "No agent can run here yet: "), "tasks will wait until one can. Install the Claude Code or Gemini CLI (and log in or set its API key), or configure [local_model]; no restart needed."),
    h("ul", { class: "agent-lines" }, agents.map(agentLine)),
    h(
      "p",
      {},
      "Create the first task: ",
      h("a", { href: "/new", "data-nav": true }, "New task"),
      ", or write a task file and run it:",
    ),
    h("pre", { class: "example" }, "# hello.yaml\nname: hello\nagent:\n  instructions: Create hello.txt saying hi\n\nclaudomator run hello.yaml"),
  );
}

export async function render(main, { query, signal, navigate }) {
  setTitle("Board");
  const filters = { project: query.get("project") || "", story: query.get("story") || "", tag: query.get("tag") || "" };
  const status = h("span", { class: "muted small", "aria-live": "off" }, "");
  const errors = h("div");
  const projectSelect = h("select", { name: "project" }, h("option", { value: "" }, "All projects"));
  const storySelect = h("select", { name: "story" }, h("option", { value: "" }, "All stories"));
  const tagInput = h("input", { name: "tag", type: "text", value: filters.tag, placeholder: "e.g. backend", autocomplete: "off" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter tasks" },
    field("Project", projectSelect),
    field("Story", storySelect),
    field("Tag", tagInput),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Filter"), h("a", { href: "/", "data-nav": true, class: "button secondary" }, "Clear")),
  );
  const board = h("div", { class: "board" });
  const alert = h("div", { role: "status" });
  const guide = h("div");
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Board"), h("a", { href: "/new", "data-nav": true, class: "button" }, "New task")),
    form,
    h("p", { class: "small" }, status),
    errors,
    alert,
    guide,
    board,
  );

  const [projects, stories, agentList] = await Promise.all([
    get("/api/projects", { signal }).catch((error) => (errors.append(errorBox(error, "Projects")), { projects: [] })),
    get("/api/stories", { signal }).catch((error) => (errors.append(errorBox(error, "Stories")), { stories: [] })),
    get("/api/agents", { signal }).catch((error) => (errors.append(errorBox(error, "Agents")), [])),
  ]);
  let agents = agentList;
  const projectNames = new Map(projects.projects.map((p) => [p.dir.replace(/\/+$/, ""), p.name]));
  for (const p of projects.projects) projectSelect.append(h("option", { value: p.name, selected: p.name === filters.project }, p.name));
  for (const s of stories.stories) storySelect.append(h("option", { value: s.story.id, selected: s.story.id === filters.story }, s.story.name));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (projectSelect.value) params.set("project", projectSelect.value);
    if (storySelect.value) params.set("story", storySelect.value);
    if (tagInput.value.trim()) params.set("tag", tagInput.value.trim());
    navigate(`/${params.size ? `?${params}` : ""}`);
  });

  const params = new URLSearchParams({ limit: String(LIMIT) });
  for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
  let tasks = [];
  let lastEventId = 0; // the newest state change when the list was read

  async function load() {
    try {
      const [page, fresh] = await Promise.all([
        get(`/api/tasks?${params}`, { signal }),
        get("/api/agents", { signal }).catch(() => agents),
      ]);
      agents = fresh;
      tasks = page.tasks;
      lastEventId = page.last_event_id ?? 0;
    } catch (error) {
      if (error.name === "AbortError") return;
      fill(errors, errorBox(error, "Could not load the tasks"));
      return;
    }
    clear(errors);
    draw();
  }

  function draw() {
    clear(board);
    const first = !tasks.length && !Object.values(filters).some(Boolean);
    fill(guide, first ? welcome(agents) : null); // the empty board: what is missing, how to start
    const groups = new Map(COLUMNS.map(([key]) => [key, []]));
    for (const task of tasks) groups.get(stateGroup(task.state))?.push(task);
    const waiting = groups.get("blocked");
    const noAgent = !first && agents.length > 0 && !agents.some((a) => a.usable);
    fill(
      alert,
      noAgent
        ? h("p", { class: "needs-banner" }, h("strong", {}, "No agent can run here: "), "queued tasks wait. ", link("/agents", "See what is missing"), ".")
        : null,
      waiting.length
        ? h(
            "p",
            { class: "needs-banner" },
            h("strong", {}, `! ${waiting.length} task${waiting.length > 1 ? "s need" : " needs"} your answer: `),
            link(`/tasks/${waiting[0].id}`, waiting[0].name),
            waiting.length > 1 ? [" · ", h("a", { href: "#col-blocked" }, "see all")] : null,
          )
        : null,
    );
    for (const [key, title, hint] of COLUMNS) {
      const list = groups.get(key);
      if (key === "pending" && !list.length) continue;
      const headingId = `col-${key}`;
      board.append(
        h(
          "section",
          { class: `column column-${key}`, "aria-labelledby": headingId, dataset: { column: key } },
          h("h2", { id: headingId }, `${title} `, h("span", { class: "count" }, `(${list.length})`)),
          h("p", { class: "muted small" }, hint),
          list.length ? h("ul", { class: "cards" }, list.map((task) => card(task, projectNames))) : h("p", { class: "muted empty" }, "None."),
        ),
      );
    }
    if (tasks.length >= LIMIT) board.append(h("p", { class: "muted" }, `Showing the newest ${LIMIT} tasks.`));
  }

  await load();
  if (signal.aborted) return;

  // Follow the state changes that come after the list was read (none is missed, none replayed).
  let timer = null;
  followEvents(
    lastEventId,
    () => {
      clearTimeout(timer);
      timer = setTimeout(load, 250); // a burst of events gives one reload
    },
    { signal, onState: (state) => (status.textContent = `Live updates: ${state}.`) },
  );
}
