// One task: what it is, where it is, what the agent did (live log, diff), and the actions.

import { ApiError, api, followEvents, get, post, readStream } from "./api.js";
import {
  busy,
  clear,
  duration,
  errorBox,
  field,
  flash,
  h,
  link,
  money,
  setTitle,
  shortId,
  showError,
  stateBadge,
  when,
  fill,
} from "./dom.js";
import { LogRenderer } from "./log.js";
import { executionCost, plural, seconds, taskCost } from "./format.js";
import { flashTask } from "./dom.js";
import { labelCells, tick } from "./live.js";

const RETRYABLE = new Set(["FAILED", "TIMED_OUT", "BUDGET_EXCEEDED", "CANCELLED"]);
const CANCELLABLE = new Set(["PENDING", "QUEUED", "RUNNING", "BLOCKED", "READY"]);
const ENDED = new Set(["COMPLETED", ...RETRYABLE]);
const EDITABLE = new Set(["PENDING", "QUEUED"]); // PATCH /api/tasks/{id} takes these

/** "Edit" on a draft or queued task: the new-task form, filled (edittask.js). */
function editLink(task) {
  return h("a", { href: `/tasks/${task.id}/edit`, "data-nav": true, class: "button secondary", "aria-label": `Edit “${task.name}”` }, "Edit");
}

function parseQuestion(task, interactions) {
  let text = task.question;
  let options = [];
  try {
    const parsed = JSON.parse(task.question);
    if (parsed && typeof parsed === "object") {
      text = parsed.text || "";
      options = Array.isArray(parsed.options) ? parsed.options.map(String) : [];
    }
  } catch {
    // plain text
  }
  const open = interactions.filter((i) => !i.answered_at).at(-1);
  if (open) {
    text = text || open.question;
    if (!options.length) options = [...open.options];
  }
  return { text, options };
}

/** The agent choice recorded when the task was last claimed: {agent, reason}. */
function choiceOf(events) {
  for (const event of [...events].reverse()) {
    const match = /; agent (\S+): (.*)$/s.exec(event.reason || "");
    if (event.to_state === "RUNNING" && match) return { agent: match[1], reason: match[2] };
  }
  return null;
}

function dl(rows) {
  return h(
    "dl",
    { class: "facts" },
    rows.filter(([, value]) => value !== null && value !== undefined && value !== "").map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]),
  );
}

// Where an execution's work went, and the command to look at it: the same words as
// claudomator/delivered.py (`run`, `show`, notifications).
function shellQuote(text) {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(text) ? text : `'${text.replaceAll("'", `'"'"'`)}'`;
}

function localPath(url) {
  if (url.startsWith("file://")) return url.slice("file://".length);
  if (url.includes("://") || url.split("/", 1)[0].includes(":")) return "";
  return url;
}

export function deliveryWhere(record) {
  const project = record.project_dir ? shellQuote(record.project_dir) : "";
  const branch = shellQuote(record.branch);
  if (record.how === "pushed") {
    const text = `pushed to ${record.remote}/${record.branch}${record.url ? ` (${record.url})` : ""}${record.rebased ? " (rebased onto new upstream work)" : ""}`;
    const path = localPath(record.url || "");
    if (path) return { text, command: `git -C ${shellQuote(path)} log ${branch}` };
    if (project && record.remote) {
      const remote = shellQuote(record.remote);
      return { text, command: `git -C ${project} fetch ${remote} && git -C ${project} log ${remote}/${branch}` };
    }
    return { text, command: "" };
  }
  if (record.how === "branch") {
    const text = `kept as branch ${record.branch}${record.project_dir ? ` in ${record.project_dir}` : ""}`;
    return { text, command: project ? `git -C ${project} log HEAD..${branch}` : `git log HEAD..${branch}` };
  }
  return { text: "no new commits; nothing delivered", command: "" };
}

// A task's own confinement settings ("" when it leaves them to its project).
export function isolationText(isolation) {
  if (!isolation) return "";
  return [isolation.launcher && `launcher ${isolation.launcher}`, isolation.network && `network ${isolation.network}`].filter(Boolean).join(", ");
}

// Whether an execution's recorded confinement is one to warn about: auto fell back to plain,
// or the launcher asked for could not run here.
export function unconfinedWarning(confinement) {
  return Boolean(confinement) && (confinement.includes("(auto:") || confinement.startsWith("refused:"));
}

function latestDelivery(executions) {
  const records = executions.map((e) => e.delivery).filter(Boolean);
  return records.filter((r) => r.how !== "nothing").at(-1) || records.at(-1) || null;
}

function deliveredNode(record) {
  if (!record) return "";
  const { text, command } = deliveryWhere(record);
  return h("span", { class: "delivered" }, h("span", { class: "wrap" }, text), command ? [" — see: ", h("code", { class: "wrap" }, command)] : null);
}

function renderDiff(text) {
  const out = h("pre", { class: "diff", tabindex: "0", "aria-label": "Unified diff" });
  for (const line of text.split("\n")) {
    let cls = "";
    if (line.startsWith("diff --git") || line.startsWith("+++ ") || line.startsWith("--- ")) cls = "d-file";
    else if (line.startsWith("@@")) cls = "d-hunk";
    else if (line.startsWith("+")) cls = "d-add";
    else if (line.startsWith("-")) cls = "d-del";
    out.append(h("span", { class: cls }, `${line}\n`));
  }
  return out;
}

export async function render(main, { params, signal, navigate }) {
  const [taskRef] = params;
  const head = h("div", { class: "page-head" });
  const actionErrors = h("div");
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Actions" });
  const panel = h("div"); // answer / review
  const overview = h("section", { "aria-labelledby": "overview-h" });
  const talk = h("section", { "aria-labelledby": "talk-h" });
  const history = h("section", { "aria-labelledby": "history-h" });
  const runs = h("section", { "aria-labelledby": "runs-h" });
  const logSection = h("section", { "aria-labelledby": "log-h", class: "log-section" });
  const diffSection = h("section", { "aria-labelledby": "diff-h" });
  main.append(head, actions, actionErrors, panel, overview, talk, runs, logSection, diffSection, history);

  let detail = null;
  let panelKey = "";
  let chosenExecution = null; // picked by the user; else the latest one is followed
  let shownLog = null; // {id, controller}
  let shownDiff = null;
  let seenExecutions = 0;
  const storyNames = new Map();

  async function load() {
    detail = await get(`/api/tasks/${encodeURIComponent(taskRef)}`, { signal });
    const story = detail.task.story_id;
    if (story && !storyNames.has(story)) {
      const view = await get(`/api/stories/${story}`, { signal }).catch(() => null);
      storyNames.set(story, view ? view.story.name : shortId(story));
    }
    flashTask(detail.task.id, detail.task.state); // a message about an older state goes
    draw();
  }

  async function act(button, path, body, message) {
    await busy(button, actionErrors, async () => {
      await post(`/api/tasks/${detail.task.id}/${path}`, body);
      await load();
      flash(message, { task: detail.task.id, state: detail.task.state });
    });
  }

  function draw() {
    const { task, executions, events, interactions } = detail;
    setTitle(task.name);
    fill(head, 
      h("h1", {}, task.name, " ", stateBadge(task.state)),
      h("p", { class: "muted small" }, `Task ${shortId(task.id)} · created ${when(task.created_at)} · updated ${when(task.updated_at)}`),
    );
    drawActions(task);
    drawPanel(task, interactions);
    drawOverview(task, executions, events, detail.check);
    drawTalk(interactions);
    drawRuns(executions, detail.checkout_notes || {});
    drawHistory(events);
    if (executions.length !== seenExecutions) {
      if (executions.length > seenExecutions && seenExecutions) chosenExecution = null; // follow the new run
      seenExecutions = executions.length;
    }
    const latest = executions.at(-1);
    const target = chosenExecution || latest?.id;
    if (target && shownLog?.id !== target) showLog(target);
    if (!target && !shownLog) {
      fill(logSection, h("h2", { id: "log-h" }, "Log"), h("p", { class: "muted" }, "No execution yet: the log appears here as soon as an agent starts."));
    }
    const delivered = [...executions].reverse().find((e) => e.commits.length);
    const diffTarget = chosenExecution && executions.find((e) => e.id === chosenExecution)?.commits.length ? chosenExecution : delivered?.id;
    if (diffTarget && shownDiff !== `${diffTarget}:${task.updated_at}`) showDiff(diffTarget, `${diffTarget}:${task.updated_at}`);
    if (!diffTarget) fill(diffSection, h("h2", { id: "diff-h" }, "Diff"), h("p", { class: "muted" }, "Nothing delivered yet."));
  }

  function drawActions(task) {
    clear(actions);
    const button = (label, onClick, cls = "") => h("button", { type: "button", class: cls, onclick: (e) => onClick(e.currentTarget) }, label);
    if (task.state === "PENDING") actions.append(button("Submit", (b) => act(b, "submit", undefined, "Submitted: the task is queued.")));
    if (EDITABLE.has(task.state)) actions.append(editLink(task));
    if (ENDED.has(task.state) && !task.checker_for_task_id) actions.append(button("Run again", (b) => runAgain(b, task)));
    if (CANCELLABLE.has(task.state)) {
      actions.append(
        button(
          "Cancel task",
          (b) => {
            if (confirm(`Cancel “${task.name}”? A running agent is stopped.`)) act(b, "cancel", undefined, "Cancelled.");
          },
          "danger",
        ),
      );
    }
    if (task.state !== "RUNNING") {
      actions.append(
        button(
          "Delete",
          async (b) => {
            if (!confirm(`Delete “${task.name}” with its history? This cannot be undone.`)) return;
            await busy(b, actionErrors, async () => {
              await api("DELETE", `/api/tasks/${task.id}`);
              flash(`Deleted “${task.name}”.`, { survives: 1 });
              navigate("/");
            });
          },
          "danger secondary",
        ),
      );
    }
  }

  // "Run again": a FAILED, TIMED_OUT, BUDGET_EXCEEDED or CANCELLED task is queued again itself
  // (its attempts stay together, like `claudomator retry`); a COMPLETED one is copied into a
  // new queued task (like `claudomator run --again`), and the page goes to that task.
  async function runAgain(button, task) {
    const retry = RETRYABLE.has(task.state);
    const question = retry
      ? `Run “${task.name}” again? It is queued for a fresh attempt; its earlier executions stay listed.`
      : `Run “${task.name}” again? A new task with the same definition is queued; this one stays as it is.`;
    if (!confirm(question)) return;
    await busy(
      button,
      actionErrors,
      async () => {
        if (retry) {
          await post(`/api/tasks/${task.id}/retry`);
          await load();
          flash(`Queued “${task.name}” again.`, { task: task.id, state: detail.task.state });
          return;
        }
        const copy = await post(`/api/tasks/${task.id}/again`);
        // about the action, not a state: it stays when the copy starts
        flash(`Queued “${task.name}” to run again as a new task; the earlier one is task ${shortId(task.id)}.`, { survives: 1 });
        navigate(`/tasks/${copy.id}`);
      },
      "Queuing…",
    );
  }

  function drawPanel(task, interactions) {
    const key = `${task.state}|${task.question}|${interactions.length}`;
    if (key === panelKey) return;
    panelKey = key;
    clear(panel);
    if (task.state === "BLOCKED") panel.append(answerPanel(task, interactions));
    if (task.state === "READY") panel.append(reviewPanel(task, latestDelivery(detail.executions)));
  }

  function answerPanel(task, interactions) {
    const { text, options } = parseQuestion(task, interactions);
    const errors = h("div");
    const send = async (button, answer) => {
      await busy(button, errors, async () => {
        await post(`/api/tasks/${task.id}/answer`, { answer });
        flash("Answer sent: the agent resumes.");
        await load();
      });
    };
    const textarea = h("textarea", { name: "answer", rows: 3, required: true });
    const submit = h("button", { type: "submit" }, "Send answer");
    const form = h(
      "form",
      {
        class: "stack",
        onsubmit: (event) => {
          event.preventDefault();
          if (textarea.value.trim()) send(submit, textarea.value.trim());
        },
      },
      field("Your answer", textarea, options.length ? "Or write your own answer." : ""),
      submit,
    );
    return h(
      "section",
      { class: "panel panel-blocked", "aria-labelledby": "question-h" },
      h("h2", { id: "question-h" }, "! The agent needs your answer"),
      h("p", { class: "question" }, text || "(the agent asked without text)"),
      options.length
        ? h(
            "div",
            { class: "options", role: "group", "aria-label": "Answer with an option" },
            options.map((option) => h("button", { type: "button", class: "option", onclick: (e) => send(e.currentTarget, option) }, option)),
          )
        : null,
      form,
      errors,
    );
  }

  function reviewPanel(task, record) {
    const errors = h("div");
    const textarea = h("textarea", { name: "feedback", rows: 3, required: true });
    const accept = h("button", { type: "button", onclick: (e) => act(e.currentTarget, "accept", undefined, "Accepted: the task is completed.") }, "Accept");
    const reject = h("button", { type: "submit", class: "danger" }, "Reject with feedback");
    const form = h(
      "form",
      {
        class: "stack",
        onsubmit: async (event) => {
          event.preventDefault();
          if (!textarea.value.trim()) return;
          await busy(reject, errors, async () => {
            await post(`/api/tasks/${task.id}/reject`, { feedback: textarea.value.trim() });
            flash("Sent back: the agent resumes with your feedback.");
            await load();
          });
        },
      },
      field("Feedback for the agent", textarea, "What should change? The agent resumes its session on the same branch."),
      reject,
    );
    return h(
      "section",
      { class: "panel panel-ready", "aria-labelledby": "review-h" },
      h("h2", { id: "review-h" }, "★ Waiting for your review"),
      h("p", {}, record?.how === "branch" ? [`The work is on the branch ${record.branch} (see: `, h("code", {}, deliveryWhere(record).command), "). "] : "", "Look at the diff below, then accept it or send it back."),
      h("div", { class: "row" }, accept),
      form,
      errors,
    );
  }

  /** The acceptance check: a verdict, or that it is pending or ended without one. */
  function checkNote(check) {
    if (!check) return null;
    const verdict = check.state === "pass" || check.state === "fail";
    const cls = check.state === "pass" ? "summary" : verdict || check.state === "no verdict" ? "error" : "muted";
    const checker = check.checker_id ? [" ", link(`/tasks/${check.checker_id}`, `checker ${shortId(check.checker_id)}`)] : [];
    return h(
      "div",
      { class: cls, dataset: { check: check.state } },
      h("strong", {}, verdict ? `Acceptance check: ${check.state}. ` : "Acceptance check: "),
      verdict ? check.report : check.line.replace(/^check: /, ""),
      ...checker,
    );
  }

  function drawOverview(task, executions, events, check) {
    const latest = executions.at(-1);
    const choice = choiceOf(events);
    const cost = taskCost(task, executions);
    const unchecked = task.cost_known === false && task.agent.max_budget_usd ? " — no price for the model: the budget was not checked" : "";
    const tokensIn = executions.reduce((sum, e) => sum + e.tokens_in, 0);
    const tokensOut = executions.reduce((sum, e) => sum + e.tokens_out, 0);
    const agentText = (latest?.agent || task.agent.type || "chosen when it runs") + (latest?.model || task.agent.model ? ` · model ${latest?.model || task.agent.model}` : "");
    fill(overview, 
      h("h2", { id: "overview-h" }, "Overview"),
      task.summary ? h("div", { class: "summary" }, h("h3", {}, "Summary"), h("p", { class: "wrap" }, task.summary)) : null,
      latest?.error_msg ? h("div", { class: "error", role: "note" }, h("strong", {}, "Error: "), h("span", { class: "wrap" }, latest.error_msg)) : null,
      checkNote(check),
      dl([
        ["Agent", agentText],
        ["Why this agent", choice ? `${choice.agent}: ${choice.reason}` : task.agent.type ? "set on the task" : ""],
        ["Project", task.agent.project_dir || "a scratch repository"],
        ["Isolation", isolationText(task.isolation)],
        ["Confinement", latest?.confinement || ""],
        ["Delivered", deliveredNode(latestDelivery(executions))],
        ["Priority", task.priority],
        ["Timeout", task.timeout ? seconds(task.timeout) : "default"],
        ["Budget", task.agent.max_budget_usd ? money(task.agent.max_budget_usd) : ""],
        ["Cost", executions.length && cost ? `${cost} over ${executions.length} execution${executions.length > 1 ? "s" : ""}${unchecked}` : ""],
        ["Tokens", executions.length ? `${tokensIn} in, ${tokensOut} out` : ""],
        ["Tags", task.tags.join(", ")],
        ["Depends on", task.depends_on.length ? task.depends_on.map((id) => [link(`/tasks/${id}`, shortId(id)), " "]) : ""],
        ["Parent", task.parent_task_id ? link(`/tasks/${task.parent_task_id}`, shortId(task.parent_task_id)) : ""],
        ["Story", task.story_id ? link(`/?story=${task.story_id}`, storyNames.get(task.story_id) || shortId(task.story_id)) : ""],
        ["Checks", task.checker_for_task_id ? link(`/tasks/${task.checker_for_task_id}`, shortId(task.checker_for_task_id)) : ""],
        ["Acceptance criteria", task.acceptance_criteria],
        ["Description", task.description],
      ]),
      h("h3", {}, "Instructions"),
      h("pre", { class: "wrap instructions" }, task.agent.instructions),
    );
  }

  function drawTalk(interactions) {
    clear(talk);
    if (!interactions.length) return;
    talk.append(
      h("h2", { id: "talk-h" }, "Questions and answers"),
      h(
        "ol",
        { class: "talk" },
        interactions.map((i) =>
          h(
            "li",
            {},
            h("p", {}, h("strong", {}, "Asked: "), i.question, i.options.length ? ` (options: ${i.options.join(", ")})` : ""),
            h("p", {}, h("strong", {}, "Answer: "), i.answered_at ? i.answer : h("em", {}, "not answered yet")),
          ),
        ),
      ),
    );
  }

  function drawRuns(executions, notes) {
    fill(runs, h("h2", { id: "runs-h" }, `Executions (${executions.length})`));
    if (!executions.length) {
      runs.append(h("p", { class: "muted" }, "None yet."));
      return;
    }
    const rows = executions.map((e, index) =>
      h(
        "tr",
        { dataset: { executionId: e.id } },
        h("th", { scope: "row" }, `#${index + 1}`),
        h("td", {}, stateBadge(e.status)),
        h("td", {}, `${e.agent || "—"}${e.model ? ` · ${e.model}` : ""}`),
        h("td", {}, when(e.start_time)),
        h("td", e.end_time ? {} : { dataset: { tickSince: e.start_time } }, e.end_time ? duration(e.start_time, e.end_time) : `running ${duration(e.start_time)}`),
        h("td", {}, executionCost(e)),
        h("td", {}, `${e.tokens_in} / ${e.tokens_out}`),
        h("td", { class: "confinement" }, e.confinement || "—"),
        h(
          "td",
          {},
          e.commits.length
            ? h("ul", { class: "plain" }, e.commits.map((c) => h("li", {}, h("code", {}, c.hash.slice(0, 8)), ` ${c.message}`)))
            : "—",
          e.commits.length ? h("div", { class: "small muted" }, `${plural(e.changestats.files, "file")}, +${e.changestats.insertions} −${e.changestats.deletions}`) : null,
        ),
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              onclick: () => {
                chosenExecution = e.id;
                showLog(e.id);
                if (e.commits.length) showDiff(e.id, e.id);
                logSection.scrollIntoView({ block: "start" });
              },
            },
            `Log${e.commits.length ? " and diff" : ""} of #${index + 1}`,
          ),
        ),
      ),
    );
    runs.append(
      h(
        "div",
        { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "Executions" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["#", "Status", "Agent", "Started", "Took", "Cost", "Tokens in / out", "Confined", "Commits", ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows),
        ),
      ),
    );
    labelCells(runs.querySelector("table"));
    // an execution that started without the checkout's uncommitted changes says so
    executions.forEach((e, index) => {
      if (notes[e.id]) runs.append(h("p", { class: "note checkout-note" }, h("strong", {}, `Note on #${index + 1}: `), notes[e.id]));
    });
    // an agent that ran unconfined because "auto" found no bubblewrap (or could not start)
    executions.forEach((e, index) => {
      if (unconfinedWarning(e.confinement)) runs.append(h("p", { class: "note confinement-note", role: "note" }, h("strong", {}, `Confinement of #${index + 1}: `), e.confinement));
    });
  }

  function drawHistory(events) {
    fill(history, 
      h("h2", { id: "history-h" }, "State history"),
      h(
        "ol",
        { class: "history" },
        events.map((e) =>
          h(
            "li",
            {},
            h("time", { datetime: e.at }, when(e.at)),
            " ",
            e.from_state ? [stateBadge(e.from_state), " → "] : null,
            stateBadge(e.to_state),
            e.reason ? h("span", { class: "reason" }, ` — ${e.reason}`) : null,
          ),
        ),
      ),
    );
  }

  function showLog(executionId) {
    shownLog?.controller.abort();
    const controller = new AbortController();
    signal.addEventListener("abort", () => controller.abort());
    shownLog = { id: executionId, controller };
    const index = detail.executions.findIndex((e) => e.id === executionId);
    const list = h("ol", { class: "log", "aria-label": "Log entries", tabindex: "0" });
    const raw = h("pre", { class: "raw wrap", hidden: true, tabindex: "0", "aria-label": "Raw log (stream-json)" });
    const state = h("p", { class: "muted small", role: "status" }, "Loading the log…");
    const errors = h("div");
    const toggle = h("button", { type: "button", class: "secondary small", "aria-pressed": "false" }, "Show raw JSON");
    toggle.addEventListener("click", () => {
      const showRaw = raw.hidden;
      raw.hidden = !showRaw;
      list.hidden = showRaw;
      toggle.textContent = showRaw ? "Show readable log" : "Show raw JSON";
      toggle.setAttribute("aria-pressed", String(showRaw));
    });
    const follow = h("input", { type: "checkbox", id: "follow-log", checked: true });
    fill(logSection, 
      h("h2", { id: "log-h" }, `Log of execution #${index + 1}`),
      h("div", { class: "row" }, toggle, h("label", { class: "inline" }, follow, " Scroll with new lines")),
      state,
      errors,
      list,
      raw,
    );
    const renderer = new LogRenderer(list);
    let lines = 0;
    const onLine = (line) => {
      lines += 1;
      renderer.add(line);
      raw.append(`${line}\n`);
    };
    (async () => {
      try {
        await readStream(
          `/api/executions/${executionId}/log/follow`,
          (message) => {
            if (message.event === "log") {
              onLine(message.data);
              if (follow.checked && !list.hidden) list.lastElementChild?.scrollIntoView({ block: "nearest" });
            } else if (message.event === "end") {
              const end = JSON.parse(message.data);
              state.textContent = `Execution ended: ${end.status} (${lines} lines).`;
            }
          },
          { signal: controller.signal },
        );
      } catch (error) {
        if (controller.signal.aborted || error.name === "AbortError") return;
        showError(errors, error, "The log stream stopped");
        return;
      }
      if (state.textContent.startsWith("Loading")) state.textContent = `${lines} lines.`;
      if (!lines) list.append(h("li", { class: "muted" }, "The agent wrote nothing to its log."));
    })();
    state.textContent = "Following the log live…";
  }

  async function showDiff(executionId, key) {
    shownDiff = key;
    const index = detail.executions.findIndex((e) => e.id === executionId);
    const e = detail.executions[index];
    const body = h("div", {}, h("p", { class: "muted" }, "Loading the diff…"));
    fill(diffSection, 
      h("h2", { id: "diff-h" }, `Diff delivered by execution #${index + 1}`),
      h("p", { class: "small" }, `${plural(e.changestats.files, "file")} changed, ${plural(e.changestats.insertions, "insertion")} (+), ${plural(e.changestats.deletions, "deletion")} (−).`),
      body,
    );
    try {
      const text = await get(`/api/executions/${executionId}/diff`, { signal });
      fill(body, text.trim() ? renderDiff(text) : h("p", { class: "muted" }, "The diff is empty."));
    } catch (error) {
      if (error.name === "AbortError") return;
      fill(body, error instanceof ApiError && error.status === 404 ? h("p", { class: "muted" }, error.message) : errorBox(error, "Could not load the diff"));
    }
  }

  await load();
  if (signal.aborted) return;
  tick(main, signal); // the running time of a RUNNING execution counts up every second
  const after = Math.max(0, ...detail.events.map((e) => e.id || 0));
  let timer = null;
  followEvents(
    after,
    (event) => {
      if (event.task_id !== detail.task.id) return;
      clearTimeout(timer);
      timer = setTimeout(() => load().catch((error) => showError(actionErrors, error)), 150);
    },
    { signal },
  );
}
