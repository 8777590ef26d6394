// New task: every task field, a project picked from the list, and "Elaborate" to draft the
// fields from a rough prompt (POST /api/tasks/elaborate; nothing is stored until you create).
// `taskForm` is the form itself; the edit page (edittask.js) shows the same form, filled.

import { ApiError, api, get, post } from "./api.js";
import { busy, clear, errorBox, field, flash, h, setTitle, fill } from "./dom.js";

const SCRATCH = "";
const OTHER = "\u0000other";

const list = (text) =>
  text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** Seconds as a duration the timeout field takes back: 600 -> "10m", 5400 -> "1h30m". */
export function durationText(value) {
  if (value === null || value === undefined || value === "") return "";
  let rest = Number(value);
  if (!Number.isInteger(rest) || rest <= 0) return String(value);
  let text = "";
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]]) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count) text += `${count}${unit}`;
  }
  return text;
}

/** What the agent picker calls the agents it knows; any other (a plugin's) by its name. */
const AGENT_LABELS = {
  claude: "Claude Code",
  gemini: "Gemini CLI",
  codex: "Codex CLI",
  qwen: "Qwen Code",
  opencode: "OpenCode",
  local: "Local model",
};

/** The agent picker's options: every agent the server knows (GET /api/agents), in its order,
 * with why it cannot run here when it cannot. */
export function agentOptions(agents) {
  return agents.map((a) => [a.agent, `${AGENT_LABELS[a.agent] || a.agent}${a.usable ? "" : ` (${a.short || "cannot run here"})`}`]);
}

/** The projects, stories and agents the form offers; failures are shown in `errors`. */
export async function loadChoices(signal, errors) {
  const [projects, stories, agents] = await Promise.all([
    get("/api/projects", { signal }).catch((error) => (errors.append(errorBox(error, "Projects")), { projects: [] })),
    get("/api/stories", { signal }).catch((error) => (errors.append(errorBox(error, "Stories")), { stories: [] })),
    get("/api/agents", { signal }).catch((error) => (errors.append(errorBox(error, "Agents")), Object.keys(AGENT_LABELS).map((agent) => ({ agent, usable: true })))),
  ]);
  return { projects, stories, agents };
}

/**
 * The task form: every field, grouped, with "Elaborate" unless `elaborate` is false. `buttons`
 * go at its end, after `errors`. Returns the form and what its pages need: `body()` (the
 * fields given, for creating), `fullBody()` (every field, empty ones too, for PATCH, which
 * merges), `fillForm(spec)`, `fillTask(task)`, `missing()`, `showProblems(error, prefix)`.
 */
export function taskForm({ projects, stories, agents = [], errors, buttons, elaborate: withElaborate = true }) {
  const input = (name, attrs = {}) => h("input", { name, type: "text", autocomplete: "off", ...attrs });
  const area = (name, rows, attrs = {}) => h("textarea", { name, rows, ...attrs });
  const select = (name, options, attrs = {}) =>
    h("select", { name, ...attrs }, options.map(([value, label]) => h("option", { value }, label)));

  const f = {
    prompt: area("prompt", 3, { placeholder: "e.g. the login page is slow on big accounts" }),
    project: select("project", [
      ...projects.projects.map((p) => [p.name, `${p.name} — ${p.dir}`]),
      [SCRATCH, "No project (a scratch repository)"],
      [OTHER, "Another directory…"],
    ]),
    project_dir: input("agent.project_dir", { placeholder: "/absolute/path/to/a/git/repository" }),
    name: input("name", { required: true }),
    description: area("description", 2),
    type: select("agent.type", [["", "Let Claudomator choose"], ...agentOptions(agents)]),
    model: input("agent.model", { placeholder: "the agent's default" }),
    instructions: area("agent.instructions", 8, { required: true }),
    timeout: input("timeout", { placeholder: "e.g. 20m (default: the server's)" }),
    priority: select("priority", [
      ["normal", "normal"],
      ["high", "high"],
      ["low", "low"],
    ]),
    tags: input("tags", { placeholder: "backend, docs" }),
    story: select("story_id", [["", "No story"], ...stories.stories.map((s) => [s.story.id, s.story.name])]),
    depends_on: input("depends_on", { placeholder: "task ids, comma-separated" }),
    parent: input("parent_task_id", { placeholder: "a task id" }),
    acceptance: area("acceptance_criteria", 2, { placeholder: "optional: a checker reviews the delivered work against this" }),
    budget: input("agent.max_budget_usd", { type: "number", min: "0", step: "0.01", inputmode: "decimal" }),
    permission: input("agent.permission_mode", { value: "bypassPermissions" }),
    allowed: input("agent.allowed_tools", { placeholder: "Bash, Edit, Write, Read" }),
    disallowed: input("agent.disallowed_tools"),
    append: area("agent.system_prompt_append", 2),
    args: input("agent.additional_args", { placeholder: "extra CLI arguments, comma-separated" }),
    context: input("agent.context_files", { placeholder: "docs/reports.md, …" }),
    skip: h("input", { name: "agent.skip_planning", type: "checkbox" }),
    temperature: input("agent.temperature", { type: "number", min: "0", max: "2", step: "0.1", inputmode: "decimal" }),
    max_tokens: input("agent.max_tokens", { type: "number", min: "1", step: "1", inputmode: "numeric" }),
    // over the project's confinement: tighter always, looser only if the operator lets tasks
    launcher: select("isolation.launcher", [
      ["", "The project's"],
      ["bubblewrap", "bubblewrap — confined"],
      ["auto", "auto — bubblewrap where it can run"],
      ["plain", "plain — unconfined"],
    ]),
    network: select("isolation.network", [
      ["", "The project's"],
      ["model-only", "model-only — the model's endpoints and the API only"],
      ["open", "open — the host's network"],
    ]),
  };
  const otherDir = field("Project directory", f.project_dir, "An absolute path on the server.");
  const syncProject = () => {
    otherDir.hidden = f.project.value !== OTHER;
  };
  f.project.addEventListener("change", syncProject);
  syncProject();

  const elaborate = h("button", { type: "button", class: "secondary" }, "Elaborate");
  const elaborateOut = h("div", { role: "status" });
  const form = h(
    "form",
    { class: "task-form", novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, "Project"),
      field("Project", f.project, projects.projects.length ? "" : "No projects yet: add them on the Projects page, or give a directory."),
      otherDir,
    ),
    withElaborate
      ? h(
          "fieldset",
          {},
          h("legend", {}, "Start from a rough prompt (optional)"),
          field("What do you want done?", f.prompt, "“Elaborate” asks a model to turn it into the fields below; review them, then create the task."),
          h("div", { class: "row" }, elaborate),
          elaborateOut,
        )
      : null,
    h(
      "fieldset",
      {},
      h("legend", {}, "Task"),
      field("Name", f.name),
      field("Instructions for the agent", f.instructions),
      field("Description", f.description, "For people; the agent does not see it."),
      h("div", { class: "grid2" }, field("Agent", f.type), field("Model", f.model)),
      h("div", { class: "grid2" }, field("Timeout", f.timeout, "Seconds, or 90s / 10m / 1h30m."), field("Priority", f.priority)),
      h("div", { class: "grid2" }, field("Tags", f.tags, "Comma-separated."), field("Story", f.story)),
      field("Acceptance criteria", f.acceptance),
    ),
    h(
      "details",
      { class: "advanced" },
      h("summary", {}, "More options (dependencies, budget, tools, …)"),
      h(
        "fieldset",
        {},
        h("legend", {}, "More options"),
        h("div", { class: "grid2" }, field("Depends on", f.depends_on), field("Parent task", f.parent)),
        h("div", { class: "grid2" }, field("Budget (USD)", f.budget), field("Permission mode", f.permission)),
        h("div", { class: "grid2" }, field("Allowed tools", f.allowed, "Comma-separated."), field("Disallowed tools", f.disallowed, "Comma-separated.")),
        field("Append to the system prompt", f.append),
        h("div", { class: "grid2" }, field("Additional CLI arguments", f.args), field("Context files", f.context, "Comma-separated, relative to the project.")),
        h("div", { class: "grid2" }, field("Temperature", f.temperature), field("Max tokens", f.max_tokens)),
        h("div", { class: "grid2" }, field("Launcher", f.launcher, "A task may tighten its project's; loosening needs [isolation] allow_task_override."), field("Network", f.network)),
        h("div", { class: "field check" }, h("label", {}, f.skip, " Skip the planning preamble (the agent is not told about Claudomator's environment)")),
      ),
    ),
    errors,
    h("div", { class: "row" }, buttons),
  );
  const projectDir = () => {
    if (f.project.value === OTHER) return f.project_dir.value.trim();
    if (f.project.value === SCRATCH) return "";
    return projects.projects.find((p) => p.name === f.project.value)?.dir || "";
  };

  function body() {
    const agent = { instructions: f.instructions.value };
    const set = (target, key, value) => {
      if (value !== "" && value !== null && value !== undefined && !(Array.isArray(value) && !value.length)) target[key] = value;
    };
    set(agent, "type", f.type.value);
    set(agent, "model", f.model.value.trim());
    set(agent, "project_dir", projectDir());
    set(agent, "max_budget_usd", f.budget.value === "" ? "" : Number(f.budget.value));
    if (f.permission.value.trim() && f.permission.value.trim() !== "bypassPermissions") agent.permission_mode = f.permission.value.trim();
    set(agent, "allowed_tools", list(f.allowed.value));
    set(agent, "disallowed_tools", list(f.disallowed.value));
    set(agent, "system_prompt_append", f.append.value);
    set(agent, "additional_args", list(f.args.value));
    set(agent, "context_files", list(f.context.value));
    if (f.skip.checked) agent.skip_planning = true;
    set(agent, "temperature", f.temperature.value === "" ? "" : Number(f.temperature.value));
    set(agent, "max_tokens", f.max_tokens.value === "" ? "" : Number(f.max_tokens.value));
    const task = { name: f.name.value.trim(), agent };
    set(task, "description", f.description.value);
    set(task, "timeout", f.timeout.value.trim());
    if (f.priority.value !== "normal") task.priority = f.priority.value;
    set(task, "tags", list(f.tags.value));
    set(task, "story_id", f.story.value);
    set(task, "depends_on", list(f.depends_on.value));
    set(task, "parent_task_id", f.parent.value.trim());
    set(task, "acceptance_criteria", f.acceptance.value);
    const isolation = {};
    set(isolation, "launcher", f.launcher.value);
    set(isolation, "network", f.network.value);
    if (Object.keys(isolation).length) task.isolation = isolation;
    return task;
  }

  function markProblems(problems) {
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of form.querySelectorAll(".problem")) el.remove();
    const placed = [];
    for (const problem of problems) {
      const name = String(problem.field || "").replace(/^body\./, "");
      const control = form.querySelector(`[name="${CSS.escape(name)}"]`) || (name === "agent.project_dir" ? f.project : null);
      if (!control) continue;
      control.setAttribute("aria-invalid", "true");
      control.closest(".field")?.append(h("small", { class: "problem" }, `✗ ${problem.message}`));
      placed.push(problem);
    }
    return placed; // the problems shown at their fields
  }

  function fillForm(spec) {
    const agent = spec.agent || {};
    const text = (value) => (value === null || value === undefined ? "" : String(value));
    const joined = (value) => (Array.isArray(value) ? value.join(", ") : text(value));
    f.name.value = text(spec.name);
    f.description.value = text(spec.description);
    f.instructions.value = text(agent.instructions);
    f.type.value = agents.some((a) => a.agent === agent.type) ? agent.type : "";
    f.model.value = text(agent.model);
    f.timeout.value = text(spec.timeout);
    f.priority.value = ["low", "normal", "high"].includes(spec.priority) ? spec.priority : "normal";
    f.tags.value = joined(spec.tags);
    f.acceptance.value = text(spec.acceptance_criteria);
    f.budget.value = text(agent.max_budget_usd);
    f.allowed.value = joined(agent.allowed_tools);
    f.disallowed.value = joined(agent.disallowed_tools);
    f.context.value = joined(agent.context_files);
    if (agent.temperature !== undefined) f.temperature.value = text(agent.temperature);
    if (agent.max_tokens !== undefined) f.max_tokens.value = text(agent.max_tokens);
    if (agent.project_dir) {
      const known = projects.projects.find((p) => p.dir === agent.project_dir);
      f.project.value = known ? known.name : OTHER;
      if (!known) f.project_dir.value = agent.project_dir;
      syncProject();
    }
  }

  /** Every field of `task` (a stored task) into the form, for editing it. */
  function fillTask(task) {
    fillForm(task);
    const agent = task.agent || {};
    const joined = (value) => (Array.isArray(value) ? value.join(", ") : "");
    f.timeout.value = durationText(task.timeout);
    f.permission.value = agent.permission_mode || "bypassPermissions";
    f.append.value = agent.system_prompt_append || "";
    f.args.value = joined(agent.additional_args);
    f.skip.checked = Boolean(agent.skip_planning);
    f.story.value = task.story_id || "";
    f.depends_on.value = joined(task.depends_on);
    f.parent.value = task.parent_task_id || "";
    f.launcher.value = task.isolation?.launcher || "";
    f.network.value = task.isolation?.network || "";
    f.project.value = agent.project_dir ? f.project.value : SCRATCH;
    syncProject();
    // something set that only "More options" shows: open it, so the edit shows it
    const more = [f.depends_on, f.parent, f.budget, f.allowed, f.disallowed, f.append, f.args, f.context, f.temperature, f.max_tokens, f.launcher, f.network];
    if (more.some((input) => input.value) || f.skip.checked || f.permission.value !== "bypassPermissions") {
      form.querySelector("details.advanced").open = true;
    }
  }

  /** Every field, the empty ones as empty: PATCH merges, so a field left out keeps its value. */
  function fullBody() {
    const number = (input) => (input.value === "" ? null : Number(input.value));
    return {
      name: f.name.value.trim(),
      description: f.description.value,
      timeout: f.timeout.value.trim() || null,
      priority: f.priority.value,
      tags: list(f.tags.value),
      story_id: f.story.value || null,
      depends_on: list(f.depends_on.value),
      parent_task_id: f.parent.value.trim() || null,
      acceptance_criteria: f.acceptance.value,
      isolation: { launcher: f.launcher.value, network: f.network.value },
      agent: {
        instructions: f.instructions.value,
        type: f.type.value,
        model: f.model.value.trim(),
        project_dir: projectDir(),
        max_budget_usd: number(f.budget),
        permission_mode: f.permission.value.trim() || "bypassPermissions",
        allowed_tools: list(f.allowed.value),
        disallowed_tools: list(f.disallowed.value),
        system_prompt_append: f.append.value,
        additional_args: list(f.args.value),
        context_files: list(f.context.value),
        skip_planning: f.skip.checked,
        temperature: number(f.temperature),
        max_tokens: number(f.max_tokens),
      },
    };
  }

  /** The required fields left empty, as problems (nothing is sent while there are some). */
  function missing() {
    const found = [];
    if (!f.name.value.trim()) found.push({ field: "name", message: "required" });
    if (!f.instructions.value.trim()) found.push({ field: "agent.instructions", message: "required" });
    if (f.project.value === OTHER && !f.project_dir.value.trim()) found.push({ field: "agent.project_dir", message: "give a directory, or pick a project" });
    return found;
  }

  /** Show `error` in `errors`: its problems at their fields, the rest in the box; focus the first. */
  function showProblems(error, prefix) {
    clear(errors);
    const placed = markProblems(error.problems || []);
    errors.append(errorBox(error, prefix, placed));
    form.querySelector("[aria-invalid]")?.focus();
  }

  if (withElaborate) {
    elaborate.addEventListener("click", async () => {
      if (!f.prompt.value.trim()) {
        fill(elaborateOut, errorBox(new Error("write a rough prompt first"), "Elaborate"));
        f.prompt.focus();
        return;
      }
      await busy(
        elaborate,
        elaborateOut,
        async () => {
          const request = { prompt: f.prompt.value.trim() };
          // the directory, not the name: it works for projects added here and in the config file
          if (projectDir()) request.project = projectDir();
          const result = await post("/api/tasks/elaborate", request);
          fillForm(result.spec);
          fill(elaborateOut, 
            h(
              "p",
              { class: "summary" },
              `✓ Drafted by ${result.backend}. Review the fields below, then create the task.`,
              result.notes.length ? h("ul", {}, result.notes.map((n) => h("li", {}, n))) : null,
            ),
          );
          f.name.focus();
        },
        "Elaborating… (up to 30 s)",
      );
    });
  }

  return { form, f, body, fullBody, fillForm, fillTask, missing, markProblems, showProblems };
}

export async function render(main, { query, signal, navigate }) {
  setTitle("New task");
  const errors = h("div");
  const { projects, stories, agents } = await loadChoices(signal, errors);
  const create = h("button", { type: "submit", value: "queue" }, "Create and queue");
  const draft = h("button", { type: "submit", value: "draft", class: "secondary" }, "Save as draft");
  const { form, f, body, missing, markProblems, showProblems } = taskForm({ projects, stories, agents, errors, buttons: [create, draft] });
  const wanted = query.get("project");
  if (wanted !== null && [...f.project.options].some((o) => o.value === wanted)) {
    f.project.value = wanted;
    f.project.dispatchEvent(new Event("change"));
  }
  const story = query.get("story");
  if (story) f.story.value = story;
  main.append(h("h1", {}, "New task"), form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const asDraft = event.submitter === draft;
    const button = asDraft ? draft : create;
    clear(errors);
    markProblems([]);
    const empty = missing();
    if (empty.length) {
      showProblems(new ApiError(0, "some fields need a value", empty), "Not created");
      return;
    }
    await busy(button, null, async () => {
      try {
        const created = await api("POST", `/api/tasks${asDraft ? "?submit=false" : ""}`, body());
        const [task] = created.tasks;
        const message = asDraft ? `Saved “${task.name}” as a draft.` : `Created “${task.name}”: it is queued.`;
        flash(message, { task: task.id, state: task.state, survives: 1 });
        navigate(`/tasks/${task.id}`);
      } catch (error) {
        showProblems(error, "Not created");
      }
    });
  });
}
