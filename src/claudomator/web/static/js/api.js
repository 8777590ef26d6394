// The JSON API, with the session's token; Server-Sent Events read through fetch() so the token
// travels in the Authorization header (EventSource cannot send one, and URLs end up in logs).

const TOKEN_KEY = "claudomator.token";

export class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems || [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let askForToken = async () => {
  throw new ApiError(401, "an API token is needed");
};
let pendingAsk = null;

/** Register the function that asks the user for a token (it resolves with the token). */
export function onTokenNeeded(fn) {
  askForToken = fn;
}

async function needToken(reason) {
  // several requests may fail at once: ask once
  if (!pendingAsk) {
    pendingAsk = askForToken(reason).finally(() => {
      pendingAsk = null;
    });
  }
  setToken(await pendingAsk);
}

function headers(extra = {}) {
  const result = { ...extra };
  const value = token();
  if (value) result.Authorization = `Bearer ${value}`;
  return result;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let problems = [];
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") message = body.error;
      if (body && Array.isArray(body.problems)) problems = body.problems;
      if (body && Array.isArray(body.attempts) && body.attempts.length) {
        message += ` (${body.attempts.map((a) => `${a.backend}: ${a.reason}`).join("; ")})`;
      }
    } catch {
      if (text.trim()) message = `${message}: ${text.trim().slice(0, 300)}`;
    }
  } catch {
    // the body is gone; the status line will do
  }
  return new ApiError(response.status, message, problems);
}

/**
 * Call the API. Resolves with the parsed JSON body (text for text/plain, null for 204);
 * rejects with an ApiError carrying the server's `error` message and `problems`.
 */
export async function api(method, path, body, { signal } = {}) {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const init = { method, signal, headers: headers({ Accept: "application/json" }) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, `cannot reach the Claudomator server (${error.message})`);
    }
    if (response.status === 401) {
      const problem = await errorOf(response);
      await needToken(problem.message);
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }
  throw new ApiError(401, "the API token was refused");
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body, options);

/**
 * Read an SSE stream until it ends or `signal` aborts. `onEvent({event, data, id})` is called
 * per event. Resolves when the server closes the stream; rejects on network or HTTP errors.
 */
export async function readStream(path, onEvent, { signal, lastEventId } = {}) {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const extra = { Accept: "text/event-stream" };
    if (lastEventId) extra["Last-Event-ID"] = String(lastEventId);
    const response = await fetch(path, { headers: headers(extra), signal, cache: "no-store" });
    if (response.status === 401) {
      await needToken((await errorOf(response)).message);
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { event: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (event.data.length) onEvent({ event: event.event, data: event.data.join("\n"), id: event.id });
          event = { event: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let content = colon < 0 ? "" : line.slice(colon + 1);
        if (content.startsWith(" ")) content = content.slice(1);
        if (field === "event") event.event = content;
        else if (field === "data") event.data.push(content);
        else if (field === "id") event.id = content;
      }
    }
  }
  throw new ApiError(401, "the API token was refused");
}

/**
 * Follow the task events stream for as long as `signal` lives, reconnecting after errors
 * (resuming from the last event seen). `onTask(event)` gets each parsed TaskEvent.
 */
export async function followEvents(after, onTask, { signal, onState } = {}) {
  let cursor = after || 0;
  while (!signal?.aborted) {
    try {
      onState?.("live");
      await readStream(
        `/api/events?after=${cursor}`,
        (message) => {
          if (message.event !== "task") return;
          if (message.id) cursor = Number(message.id);
          onTask(JSON.parse(message.data));
        },
        { signal, lastEventId: cursor },
      );
    } catch (error) {
      if (signal?.aborted || error.name === "AbortError") return;
      onState?.(`reconnecting (${error.message})`);
    }
    await sleep(2000, signal);
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
