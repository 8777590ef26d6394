// Stories: tasks grouped toward one goal, with their progress.

import { api, get, post } from "./api.js";
import { busy, clear, errorBox, field, flash, h, link, setTitle, fill } from "./dom.js";

export async function render(main, { signal }) {
  setTitle("Stories");
  const listing = h("div");
  const errors = h("div");
  const name = h("input", { name: "name", type: "text", required: true, maxlength: "200", autocomplete: "off" });
  const description = h("textarea", { name: "description", rows: 3 });
  const save = h("button", { type: "submit" }, "Create story");
  const cancelEdit = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel editing");
  let editing = null;
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "new-story-h" },
    h("h2", { id: "new-story-h" }, "New story"),
    field("Name", name),
    field("Description", description),
    errors,
    h("div", { class: "row" }, save, cancelEdit),
  );
  const resetForm = () => {
    editing = null;
    form.reset();
    save.textContent = "Create story";
    form.querySelector("h2").textContent = "New story";
    cancelEdit.hidden = true;
  };
  cancelEdit.addEventListener("click", resetForm);
  main.append(h("h1", {}, "Stories"), listing, form);

  async function load() {
    let stories;
    try {
      stories = (await get("/api/stories", { signal })).stories;
    } catch (error) {
      fill(listing, errorBox(error, "Could not load the stories"));
      return;
    }
    clear(listing);
    if (!stories.length) {
      listing.append(h("p", { class: "muted" }, "No stories yet. A story groups tasks toward one goal; create one below, then pick it on a new task."));
      return;
    }
    listing.append(
      h(
        "ul",
        { class: "cards wide" },
        stories.map((view) => {
          const s = view.story;
          const rowErrors = h("div");
          const states = Object.entries(view.tasks)
            .filter(([, n]) => n)
            .map(([state, n]) => `${n} ${state}`)
            .join(", ");
          const percent = Math.round(view.progress * 100);
          return h(
            "li",
            { class: "card", dataset: { story: s.id } },
            h("h2", {}, s.name),
            s.description ? h("p", { class: "wrap" }, s.description) : null,
            h("label", { class: "small" }, `${view.completed} of ${view.total} tasks completed (${percent}%)`, h("progress", { max: "100", value: String(percent) })),
            states ? h("p", { class: "muted small" }, states) : null,
            h(
              "div",
              { class: "row" },
              link(`/?story=${s.id}`, "Tasks"),
              link(`/new?story=${s.id}`, "New task in this story"),
              h(
                "button",
                {
                  type: "button",
                  class: "secondary small",
                  onclick: () => {
                    editing = s.id;
                    name.value = s.name;
                    description.value = s.description;
                    save.textContent = "Save story";
                    form.querySelector("h2").textContent = `Edit ${s.name}`;
                    cancelEdit.hidden = false;
                    name.focus();
                  },
                },
                `Edit ${s.name}`,
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "danger small",
                  onclick: async (event) => {
                    if (!confirm(`Delete the story “${s.name}”? Its tasks stay, without a story.`)) return;
                    await busy(event.currentTarget, rowErrors, async () => {
                      await api("DELETE", `/api/stories/${s.id}`);
                      flash(`Deleted ${s.name}.`);
                      await load();
                    });
                  },
                },
                `Delete ${s.name}`,
              ),
            ),
            rowErrors,
          );
        }),
      ),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim()) {
      fill(errors, errorBox(new Error("a story needs a name")));
      name.focus();
      return;
    }
    await busy(save, errors, async () => {
      const story = { name: name.value.trim(), description: description.value };
      const saved = editing ? await api("PATCH", `/api/stories/${editing}`, story) : await post("/api/stories", story);
      flash(`${editing ? "Saved" : "Created"} ${saved.story.name}.`);
      resetForm();
      await load();
    });
  });

  await load();
}
