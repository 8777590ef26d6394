// An agent's stream-json log, rendered for people. Claude Code (and Qwen Code and the local
// agent, which write Claude-style lines), the Gemini CLI, Codex (`codex exec --json`) and
// OpenCode (`opencode run --format json`) are understood; see docs/agents.md and
// claudomator/logview.py, which does the same for the terminal.

import { h, money } from "./dom.js";

const FOLD_AT = 400; // characters: longer tool inputs / results are folded

/** The main input of a tool call, as logview.py picks it. */
function mainInput(input) {
  if (input && typeof input === "object") {
    for (const key of ["command", "file_path", "path", "pattern", "url", "description"]) {
      if (typeof input[key] === "string") return { key, value: input[key] };
    }
  }
  return null;
}

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === "object" ? part.text ?? JSON.stringify(part) : String(part)))
      .join("\n");
  }
  if (content === null || content === undefined) return "";
  return JSON.stringify(content, null, 2);
}

function firstLine(text, width = 120) {
  const line = (text || "").split("\n").find((l) => l.trim()) || "";
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

function entry(kind, label, ...body) {
  return h("li", { class: `entry entry-${kind}` }, h("span", { class: "entry-label" }, label), ...body);
}

function pre(text, cls = "") {
  return h("pre", { class: `wrap ${cls}`.trim() }, text);
}

function folded(summary, text, { open = false, cls = "" } = {}) {
  return h("details", { class: cls, open }, h("summary", {}, summary), pre(text));
}

function toolInput(name, input) {
  const main = mainInput(input);
  const parts = [];
  if (main) parts.push(h("code", { class: "tool-main" }, main.value));
  const rest = { ...(input || {}) };
  if (main) delete rest[main.key];
  const restText = Object.keys(rest).length ? JSON.stringify(rest, null, 2) : "";
  if (restText) {
    if (restText.length > FOLD_AT) parts.push(folded(`Input (${restText.length} characters)`, restText));
    else parts.push(pre(restText, "tool-input"));
  }
  return parts;
}

/** Renders lines of one execution's log into a list, keeping state across lines. */
export class LogRenderer {
  constructor(list) {
    this.list = list;
    this.tools = new Map(); // tool_use_id -> name
    this.geminiText = null; // the assistant entry Gemini deltas append to
    this.count = 0;
  }

  add(line) {
    if (!line.trim()) return;
    this.count += 1;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      this.geminiText = null;
      this.list.append(entry("plain", "Output", pre(line)));
      return;
    }
    if (!event || typeof event !== "object") return;
    const items = this.render(event);
    for (const item of items) if (item) this.list.append(item);
  }

  render(event) {
    const type = event.type;
    if (type !== "message" || event.role !== "assistant") this.geminiText = null;
    if (typeof type === "string" && /^(thread|turn|item)\./.test(type)) return this.codex(event);
    const part = event.part && typeof event.part === "object" ? event.part : null;
    if (part || type === "step_start" || type === "step_finish" || (type === "error" && event.error && typeof event.error === "object")) {
      return this.opencode(event, part || {});
    }
    switch (type) {
      case "system":
        return [this.system(event)];
      case "assistant":
        return this.assistant(event);
      case "user":
        return this.user(event);
      case "result":
        return [this.result(event)];
      // Gemini CLI
      case "init":
        return [entry("system", "Session", `started · model ${event.model || "?"} · session ${event.session_id || "?"}`)];
      case "message":
        return this.geminiMessage(event);
      case "tool_use":
        this.tools.set(event.tool_id, event.tool_name);
        return [entry("tool", `Tool call: ${event.tool_name}`, ...toolInput(event.tool_name, event.parameters))];
      case "tool_result":
        return [this.toolResult(this.tools.get(event.tool_id), event.status === "error", event.error ? event.error.message || JSON.stringify(event.error) : textOf(event.output))];
      case "error":
        return [entry("error", "Error", pre(event.message || JSON.stringify(event)))];
      default:
        return [];
    }
  }

  system(event) {
    if (event.subtype === "init") {
      const bits = [`model ${event.model || "?"}`, `session ${event.session_id || "?"}`];
      if (event.cwd) bits.push(`in ${event.cwd}`);
      return entry("system", "Session", `started · ${bits.join(" · ")}`);
    }
    if (event.subtype === "api_retry") {
      return entry(
        "warning",
        "Retry",
        `attempt ${event.attempt}/${event.max_retries} in ${event.retry_delay_ms} ms (${event.error}${event.error_status ? `, HTTP ${event.error_status}` : ""})`,
      );
    }
    return null;
  }

  assistant(event) {
    const message = event.message || {};
    const synthetic = message.model === "<synthetic>" || event.error;
    const out = [];
    for (const block of message.content || []) {
      if (!block || typeof block !== "object") continue;
      if (block.type === "text" && block.text) {
        out.push(synthetic ? entry("error", "Error", pre(block.text)) : entry("assistant", "Assistant", pre(block.text, "prose")));
      } else if (block.type === "tool_use") {
        this.tools.set(block.id, block.name);
        out.push(entry("tool", `Tool call: ${block.name}`, ...toolInput(block.name, block.input)));
      } else if (block.type === "thinking" && block.thinking) {
        out.push(entry("thinking", "Thinking", folded("Show thinking", block.thinking)));
      }
    }
    return out;
  }

  user(event) {
    const content = event.message && event.message.content;
    if (!Array.isArray(content)) return [];
    const out = [];
    for (const block of content) {
      if (block && block.type === "tool_result") {
        out.push(this.toolResult(this.tools.get(block.tool_use_id), Boolean(block.is_error), textOf(block.content)));
      }
    }
    return out;
  }

  toolResult(name, isError, text) {
    const label = `${isError ? "Tool error" : "Tool result"}${name ? `: ${name}` : ""}`;
    const lines = (text || "").split("\n").length;
    const summary = text
      ? `${firstLine(text)}${lines > 1 ? ` (${lines} lines)` : ""}`
      : "(no output)";
    return entry(isError ? "error" : "result", label, folded(summary, text || "(no output)", { cls: "result-body" }));
  }

  codex(event) {
    const type = event.type;
    if (type === "thread.started") return [entry("system", "Session", `started · thread ${event.thread_id || "?"}`)];
    if (type === "turn.completed") {
      const usage = event.usage || {};
      return [entry("done", "Turn finished", h("span", { class: "muted" }, `${usage.input_tokens || 0} tokens in, ${usage.output_tokens || 0} out`))];
    }
    if (type === "turn.failed") {
      const error = event.error;
      return [entry("error", "Finished with an error", pre(error && typeof error === "object" ? error.message || JSON.stringify(error) : String(error || "")))];
    }
    const item = event.item;
    if (!item || typeof item !== "object") return [];
    const done = type === "item.completed";
    switch (item.type) {
      case "agent_message":
        return done ? [entry("assistant", "Assistant", pre(item.text || "", "prose"))] : [];
      case "reasoning":
        return done && item.text ? [entry("thinking", "Thinking", folded("Show thinking", item.text))] : [];
      case "command_execution":
        if (!done) return [entry("tool", "Tool call: shell", h("code", { class: "tool-main" }, item.command || ""))];
        return [this.toolResult("shell", (item.exit_code !== null && item.exit_code !== undefined && item.exit_code !== 0) || item.status === "failed", item.aggregated_output || "")];
      case "file_change": {
        if (!done) return [];
        const changes = (Array.isArray(item.changes) ? item.changes : []).filter((c) => c && typeof c === "object");
        return [entry("tool", "Files changed", pre(changes.map((c) => `${c.kind || "change"} ${c.path || "?"}`).join("\n")))];
      }
      case "error":
        return [entry("warning", "Warning", pre(item.message || ""))];
      default:
        return [];
    }
  }

  opencode(event, part) {
    switch (event.type) {
      case "text":
        return part.text ? [entry("assistant", "Assistant", pre(part.text, "prose"))] : [];
      case "tool_use": {
        const state = part.state && typeof part.state === "object" ? part.state : {};
        const failed = state.status === "error";
        return [
          entry("tool", `Tool call: ${part.tool || "?"}`, ...toolInput(part.tool, state.input)),
          this.toolResult(part.tool, failed, textOf(failed ? state.error : state.output)),
        ];
      }
      case "step_finish": {
        const tokens = part.tokens || {};
        const bits = [`${tokens.input || 0} tokens in, ${tokens.output || 0} out`];
        if (typeof part.cost === "number") bits.unshift(money(part.cost));
        return [entry("done", `Step finished (${part.reason || "?"})`, h("span", { class: "muted" }, bits.join(" · ")))];
      }
      case "error": {
        const error = event.error || {};
        const data = error.data && typeof error.data === "object" ? error.data : {};
        const status = data.statusCode ? ` (HTTP ${data.statusCode})` : "";
        return [entry("error", "Error", pre(`${data.message || error.name || JSON.stringify(error)}${status}`))];
      }
      default:
        return [];
    }
  }

  geminiMessage(event) {
    if (event.role === "user") {
      this.geminiText = null;
      return [entry("prompt", "Prompt", folded(firstLine(textOf(event.content)), textOf(event.content)))];
    }
    if (event.role !== "assistant") return [];
    if (this.geminiText && event.delta) {
      this.geminiText.textContent += textOf(event.content);
      return [];
    }
    this.geminiText = pre(textOf(event.content), "prose");
    return [entry("assistant", "Assistant", this.geminiText)];
  }

  result(event) {
    const isError = Boolean(event.is_error) || event.status === "error";
    const bits = [];
    if (typeof event.total_cost_usd === "number") bits.push(money(event.total_cost_usd));
    if (event.num_turns) bits.push(`${event.num_turns} turns`);
    const usage = event.usage || event.stats;
    if (usage && (usage.input_tokens || usage.output_tokens)) {
      bits.push(`${usage.input_tokens || 0} tokens in, ${usage.output_tokens || 0} out`);
    }
    if (event.subtype && event.subtype !== "success") bits.push(event.subtype);
    const text =
      event.result ||
      (event.error && (event.error.message || JSON.stringify(event.error))) ||
      (Array.isArray(event.errors) ? event.errors.join("\n") : "");
    return entry(
      isError ? "error" : "done",
      isError ? "Finished with an error" : "Finished",
      bits.length ? h("span", { class: "muted" }, bits.join(" · ")) : null,
      text ? pre(String(text), isError ? "" : "prose") : null,
    );
  }
}
