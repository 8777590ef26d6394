// Edit a draft (PENDING) or queued task: the new-task form, filled with the task, saved with
// PATCH /api/tasks/{id}. Field problems (422) show at their fields; a task that started
// meanwhile (409) is said so, and the form keeps what was typed.

import { ApiError, api, get } from "./api.js";
import { busy, clear, errorBox, flash, h, link, setTitle, shortId, stateBadge } from "./dom.js";
import { loadChoices, taskForm } from "./newtask.js";

export const EDITABLE = new Set(["PENDING", "QUEUED"]);

export async function render(main, { params, signal, navigate }) {
  const [taskRef] = params;
  const detail = await get(`/api/tasks/${encodeURIComponent(taskRef)}`, { signal });
  const task = detail.task;
  const back = `/tasks/${task.id}`;
  setTitle(`Edit ${task.name}`);
  const heading = h("h1", {}, `Edit “${task.name}” `, stateBadge(task.state));
  if (!EDITABLE.has(task.state)) {
    main.append(
      heading,
      h("p", {}, `This task is ${task.state.replace("_", " ")}: only drafts and queued tasks can be edited. `, link(back, "Back to the task"), "."),
    );
    return;
  }
  const errors = h("div");
  const { projects, stories, agents } = await loadChoices(signal, errors);
  const save = h("button", { type: "submit" }, "Save changes");
  const cancel = h("a", { href: back, "data-nav": true, class: "button secondary" }, "Back without saving");
  const { form, fillTask, fullBody, missing, markProblems, showProblems } = taskForm({
    projects,
    stories,
    agents,
    errors,
    buttons: [save, cancel],
    elaborate: false,
  });
  fillTask(task);
  main.append(
    heading,
    h("p", { class: "muted small" }, `Task ${shortId(task.id)}. `, task.state === "QUEUED" ? "It may start at any moment: then it can no longer be edited." : "A draft: submit it from its page once it is ready."),
    form,
  );

  // a task that left PENDING/QUEUED meanwhile: say what it is now; the typed fields stay
  async function startedMeanwhile(error) {
    const now = await get(`/api/tasks/${task.id}`, { signal }).catch(() => null);
    clear(errors);
    const state = now ? now.task.state.replace("_", " ") : "no longer editable";
    errors.append(
      h(
        "div",
        { class: "error", role: "alert" },
        h("strong", {}, "Not saved: "),
        now ? `“${task.name}” is ${state} now (it left the queue while you were editing), so it can no longer be changed. ` : `${error.message}. `,
        link(back, "See the task"),
        ".",
      ),
    );
    errors.querySelector("a").focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    markProblems([]);
    const empty = missing();
    if (empty.length) {
      showProblems(new ApiError(0, "some fields need a value", empty), "Not saved");
      return;
    }
    await busy(
      save,
      null,
      async () => {
        try {
          const saved = await api("PATCH", `/api/tasks/${task.id}`, fullBody());
          flash(`Saved your changes to “${saved.name}”.`, { survives: 1 }); // true even once it starts
          navigate(back);
        } catch (error) {
          if (error.name === "AbortError") return;
          if (error instanceof ApiError && error.status === 409) await startedMeanwhile(error);
          else if (error instanceof ApiError && error.status === 404) fillNotFound(error);
          else showProblems(error, "Not saved");
        }
      },
      "Saving…",
    );
  });

  function fillNotFound(error) {
    clear(errors);
    errors.append(errorBox(error, "Not saved (the task was deleted)"));
  }
}
