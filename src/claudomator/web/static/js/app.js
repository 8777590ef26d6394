// The app shell: a tiny client-side router over the server's page paths, the token prompt and
// the "notify me" button. Each page module exports render(main, context).

import { onTokenNeeded } from "./api.js";
import { clear, errorBox, flashNavigated, h, setTitle } from "./dom.js";
import { setupNotify } from "./push.js";

const ROUTES = [
  [/^\/$/, () => import("./board.js")],
  [/^\/new$/, () => import("./newtask.js")],
  [/^\/projects$/, () => import("./projects.js")],
  [/^\/stories$/, () => import("./stories.js")],
  [/^\/agents$/, () => import("./agents.js")],
  [/^\/tasks\/([^/]+)\/edit$/, () => import("./edittask.js")],
  [/^\/tasks\/([^/]+)$/, () => import("./task.js")],
];

let current = null; // AbortController of the page on screen

export function navigate(href, { replace = false } = {}) {
  const url = new URL(href, location.href);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

async function route() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main");
  const path = location.pathname.replace(/\/+$/, "") || "/";
  for (const link of document.querySelectorAll("header nav a")) {
    const target = link.getAttribute("href");
    const active = target === "/" ? path === "/" : path.startsWith(target);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const match = ROUTES.find(([pattern]) => pattern.test(path));
  clear(main);
  flashNavigated();
  if (!match) {
    // the server answers such paths with this shell and a 404 status
    setTitle("Page not found");
    main.append(
      h("h1", {}, "Page not found"),
      h("p", {}, `There is no page at ${path}. `, h("a", { href: "/", "data-nav": true }, "Go to the board"), "."),
    );
    return;
  }
  const params = path.match(match[0]).slice(1).map(decodeURIComponent);
  try {
    const page = await match[1]();
    if (controller.signal.aborted) return;
    await page.render(main, { params, query: new URLSearchParams(location.search), signal: controller.signal, navigate });
  } catch (error) {
    if (controller.signal.aborted || error.name === "AbortError") return;
    main.append(errorBox(error, "Could not show this page"));
  }
  if (!controller.signal.aborted && document.activeElement === document.body) {
    main.focus({ preventScroll: true });
  }
}

function askForToken(reason) {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const why = document.getElementById("token-reason");
  return new Promise((resolve) => {
    why.textContent = reason
      ? `The server says: ${reason}. Enter the API token (api_token in its config); it is kept for this browser tab's session only.`
      : "Enter the API token (api_token in the server's config); it is kept for this browser tab's session only.";
    input.value = "";
    const done = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      dialog.removeEventListener("submit", done);
      dialog.removeEventListener("cancel", cancel);
      dialog.close();
      resolve(value);
    };
    const cancel = (event) => event.preventDefault(); // the token is needed to go on
    dialog.addEventListener("submit", done);
    dialog.addEventListener("cancel", cancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-nav]");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname === location.pathname && url.search === location.search) return;
  navigate(url.href);
});

window.addEventListener("popstate", route);
onTokenNeeded(askForToken);
setupNotify(document.getElementById("notify"));
route();
