// The board: tasks by state, live from the events stream, filtered by project, story and tag.

import { followEvents, get } from "./api.js";
import { ago, clear, errorBox, field, h, link, setTitle, shortId, stateBadge, stateGroup, fill } from "./dom.js";

const COLUMNS = [
  ["pending", "Drafts", "Saved with “Save as draft”; submit them to queue."],
  ["queued", "Queued", "Waiting for a free slot or for their dependencies."],
  ["running", "Running", "An agent is working on them."],
  ["blocked", "Blocked", "The agent asked a question: answer it to resume."],
  ["ready", "Ready for review", "Accept or reject the delivered branch."],
  ["done", "Done", "Completed."],
  ["failed", "Failed", "Failed, timed out, over budget or cancelled: retry them."],
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

function card(task) {
  const blocked = task.state === "BLOCKED";
  const bits = [];
  if (task.agent.type) bits.push(task.agent.type + (task.agent.model ? ` · ${task.agent.model}` : ""));
  if (task.priority !== "normal") bits.push(`${task.priority} priority`);
  return h(
    "li",
    { class: `card${blocked ? " card-blocked" : ""}`, dataset: { taskId: task.id, state: task.state } },
    h("div", { class: "card-head" }, stateBadge(task.state), h("span", { class: "muted id" }, shortId(task.id))),
    h("h3", {}, link(`/tasks/${task.id}`, task.name)),
    blocked ? h("p", { class: "needs" }, h("strong", {}, "Needs your answer: "), question(task)) : null,
    task.state === "READY" ? h("p", { class: "needs" }, h("strong", {}, "Waiting for your review.")) : null,
    task.tags.length ? h("p", { class: "tags" }, task.tags.map((t) => h("span", { class: "tag" }, `#${t}`))) : null,
    h("p", { class: "muted small" }, [...bits, `updated ${ago(task.updated_at)}`].join(" · ")),
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
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Board"), h("a", { href: "/new", "data-nav": true, class: "button" }, "New task")),
    form,
    h("p", { class: "small" }, status),
    errors,
    alert,
    board,
  );

  const [projects, stories] = await Promise.all([
    get("/api/projects", { signal }).catch((error) => (errors.append(errorBox(error, "Projects")), { projects: [] })),
    get("/api/stories", { signal }).catch((error) => (errors.append(errorBox(error, "Stories")), { stories: [] })),
  ]);
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
      const page = await get(`/api/tasks?${params}`, { signal });
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
    const groups = new Map(COLUMNS.map(([key]) => [key, []]));
    for (const task of tasks) groups.get(stateGroup(task.state))?.push(task);
    const waiting = groups.get("blocked");
    fill(
      alert,
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
          list.length ? h("ul", { class: "cards" }, list.map(card)) : h("p", { class: "muted empty" }, "None."),
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
