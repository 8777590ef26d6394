// Start Swagger UI (loaded by /docs from the package) on the API's own description, with the
// browser tab's API token (the web UI's): asked for here when the server wants one.
import { setToken, token } from "./api.js";

const prompt = document.getElementById("docs-token");
const form = document.getElementById("docs-token-form");
const input = document.getElementById("docs-token-input");

function withToken(request) {
  const value = token();
  if (value) request.headers.Authorization = `Bearer ${value}`;
  return request;
}

async function description() {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const answer = await fetch("/openapi.json", { headers });
  if (answer.status === 401) return null;
  if (!answer.ok) throw new Error(`/openapi.json answered ${answer.status}`);
  return answer.json();
}

async function start() {
  const spec = await description();
  if (spec === null) {
    prompt.hidden = false;
    input.focus();
    return;
  }
  prompt.hidden = true;
  // SwaggerUIBundle is the global that swagger-ui-bundle.js defines
  window.SwaggerUIBundle({ spec, dom_id: "#swagger-ui", requestInterceptor: withToken });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(input.value.trim());
  start();
});

start().catch((error) => {
  const box = document.getElementById("swagger-ui");
  box.textContent = `The API description could not be loaded: ${error.message}`;
});
