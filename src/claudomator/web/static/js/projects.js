// Projects: those of the config file (read-only) and those added here (edit, delete).

import { api, get } from "./api.js";
import { busy, clear, errorBox, field, flash, h, link, setTitle, fill } from "./dom.js";

function words(text) {
  return text.trim() ? text.trim().split(/\s+/) : [];
}

// A project's confinement settings, for its card.
function confinementText(p) {
  const parts = [
    `launcher ${p.launcher || "as configured"}`,
    `network ${p.network || "as configured"}`,
    p.read_only_paths?.length ? `read-only ${p.read_only_paths.join(", ")}` : "",
    p.allowed_endpoints?.length ? `endpoints ${p.allowed_endpoints.join(", ")}` : "",
  ];
  return parts.filter(Boolean).join("; ");
}

export async function render(main, { signal }) {
  setTitle("Projects");
  const listing = h("div");
  const errors = h("div");
  const name = h("input", { name: "name", type: "text", required: true, autocomplete: "off" });
  const dir = h("input", { name: "dir", type: "text", required: true, placeholder: "/home/me/src/app", autocomplete: "off" });
  const build = h("input", { name: "build_command", type: "text", placeholder: "make build", autocomplete: "off" });
  const delivery = h(
    "select",
    { name: "delivery" },
    h("option", { value: "auto" }, "auto — push to a local remote, else a branch"),
    h("option", { value: "push" }, "push — to the project's bare remote"),
    h("option", { value: "branch" }, "branch — claudomator/<short id>-<name> in the repository"),
  );
  const review = h("input", { name: "review", type: "checkbox" });
  // how its agents are confined, over the operator's [isolation] ("" : the operator's)
  const launcher = h(
    "select",
    { name: "launcher" },
    h("option", { value: "" }, "the operator's ([isolation] launcher)"),
    h("option", { value: "bubblewrap" }, "bubblewrap — confined (fails where bwrap cannot run)"),
    h("option", { value: "auto" }, "auto — bubblewrap where it can run, else plain with a warning"),
    h("option", { value: "plain" }, "plain — unconfined"),
  );
  const network = h(
    "select",
    { name: "network" },
    h("option", { value: "" }, "the operator's ([isolation] network)"),
    h("option", { value: "open" }, "open — the host's network"),
    h("option", { value: "model-only" }, "model-only — only the model's endpoints, the API and those below"),
  );
  const readOnly = h("input", { name: "read_only_paths", type: "text", placeholder: "/srv/cache/npm", autocomplete: "off" });
  const endpoints = h("input", { name: "allowed_endpoints", type: "text", placeholder: "https://registry.npmjs.org", autocomplete: "off" });
  const save = h("button", { type: "submit" }, "Add project");
  const cancelEdit = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel editing");
  let editing = null;
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "add-h" },
    h("h2", { id: "add-h" }, "Add a project"),
    field("Name", name),
    field("Directory", dir, "An absolute path to a git repository on the server."),
    field("Build command", build, "Arguments separated by spaces; empty: detect (make build, ./gradlew build, go build)."),
    field("Delivery", delivery),
    h("div", { class: "field check" }, h("label", {}, review, " Review work before it counts (tasks wait in READY for accept or reject)")),
    field("Launcher", launcher, "How its agents (and their build checks) are started."),
    field("Network", network),
    field("Read-only paths", readOnly, "Absolute paths separated by spaces, added to the operator's (a shared package cache)."),
    field("Allowed endpoints", endpoints, "scheme://host[:port] separated by spaces, reachable under model-only."),
    errors,
    h("div", { class: "row" }, save, cancelEdit),
  );
  main.append(h("h1", {}, "Projects"), listing, form);

  const resetForm = () => {
    editing = null;
    form.reset();
    name.disabled = false;
    save.textContent = "Add project";
    form.querySelector("h2").textContent = "Add a project";
    cancelEdit.hidden = true;
  };
  cancelEdit.addEventListener("click", resetForm);

  async function load() {
    let projects;
    try {
      projects = (await get("/api/projects", { signal })).projects;
    } catch (error) {
      fill(listing, errorBox(error, "Could not load the projects"));
      return;
    }
    clear(listing);
    if (!projects.length) {
      listing.append(h("p", { class: "muted" }, "No projects yet. Add one below, or in the config file ([[projects]])."));
      return;
    }
    listing.append(
      h(
        "ul",
        { class: "cards wide" },
        projects.map((p) => {
          const rowErrors = h("div");
          const buttons =
            p.source === "api"
              ? [
                  h(
                    "button",
                    {
                      type: "button",
                      class: "secondary small",
                      onclick: () => {
                        editing = p.name;
                        name.value = p.name;
                        name.disabled = true;
                        dir.value = p.dir;
                        build.value = p.build_command.join(" ");
                        delivery.value = p.delivery;
                        review.checked = p.review;
                        launcher.value = p.launcher || "";
                        network.value = p.network || "";
                        readOnly.value = (p.read_only_paths || []).join(" ");
                        endpoints.value = (p.allowed_endpoints || []).join(" ");
                        save.textContent = "Save project";
                        form.querySelector("h2").textContent = `Edit ${p.name}`;
                        cancelEdit.hidden = false;
                        dir.focus();
                      },
                    },
                    `Edit ${p.name}`,
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "danger small",
                      onclick: async (event) => {
                        if (!confirm(`Remove the project “${p.name}”? Its tasks stay.`)) return;
                        await busy(event.currentTarget, rowErrors, async () => {
                          await api("DELETE", `/api/projects/${encodeURIComponent(p.name)}`);
                          flash(`Removed ${p.name}.`);
                          await load();
                        });
                      },
                    },
                    `Remove ${p.name}`,
                  ),
                ]
              : [h("span", { class: "muted small" }, "From the config file (read-only here).")];
          return h(
            "li",
            { class: "card", dataset: { project: p.name } },
            h("h2", {}, p.name),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, "Directory"),
              h("dd", {}, h("code", {}, p.dir)),
              h("dt", {}, "Delivery"),
              h("dd", {}, p.delivery),
              h("dt", {}, "Review"),
              h("dd", {}, p.review ? "yes: work waits in READY" : "no"),
              h("dt", {}, "Build"),
              h("dd", {}, p.build_command.length ? h("code", {}, p.build_command.join(" ")) : "detected"),
              h("dt", {}, "Confinement"),
              h("dd", { class: "confinement" }, confinementText(p)),
            ),
            h("div", { class: "row" }, link(`/?project=${encodeURIComponent(p.name)}`, "Tasks"), link(`/new?project=${encodeURIComponent(p.name)}`, "New task"), buttons),
            rowErrors,
          );
        }),
      ),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const project = {
      name: name.value.trim(),
      dir: dir.value.trim(),
      build_command: words(build.value),
      delivery: delivery.value,
      review: review.checked,
      launcher: launcher.value,
      network: network.value,
      read_only_paths: words(readOnly.value),
      allowed_endpoints: words(endpoints.value),
    };
    await busy(save, errors, async () => {
      if (editing) await api("PUT", `/api/projects/${encodeURIComponent(editing)}`, project);
      else await api("POST", "/api/projects", project);
      flash(editing ? `Saved ${project.name}.` : `Added ${project.name}.`);
      resetForm();
      await load();
    });
  });

  await load();
}
