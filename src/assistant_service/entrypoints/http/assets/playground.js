// The playground: pick an assistant, start a thread, chat over the WebSocket /stream.
// DOM calls only (textContent): nothing the model or a tool says runs as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    assistant: $("assistant"), newThread: $("new-thread"), thread: $("thread"),
    loadHistory: $("load-history"), transcript: $("transcript"), composer: $("composer"),
    message: $("message"), send: $("send"), cancel: $("cancel"), keepRunning: $("keep-running"),
    connection: $("connection"), apiKey: $("api-key"),
  };
  // The key lives in this tab's session storage: gone when the tab closes.
  const KEY_STORAGE = "assistant-service.api-key";

  const state = {
    socket: null,
    run: null,          // {id, lastSeq, message, tools: Map, pending: Map, decisions: []}
    starting: false,    // a message frame was sent, no run.started yet
    retry: 0,
    frames: 0,
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function add(node) {
    ui.transcript.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  function message(role, text) {
    const body = el("span", { class: "text", text: text });
    return add(el("li", { class: "msg " + role, "data-role": role },
      el("span", { class: "who", text: role === "user" ? "You" : "Assistant" }), body));
  }

  function showError(code, text) {
    return add(el("li", { class: "error", role: "alert", "data-code": code },
      el("strong", { text: "Error " + code + ": " }), text));
  }

  function note(text) {
    return add(el("li", { class: "note", text: text }));
  }

  function setConnection(text) { ui.connection.textContent = text; }

  function busy(running) {
    ui.send.disabled = running;
    ui.cancel.disabled = !(running && state.run);
    ui.newThread.disabled = running;
    ui.loadHistory.disabled = running;
  }

  // ---- HTTP ----------------------------------------------------------------------

  function apiKey() { return ui.apiKey.value.trim(); }

  function headers() {
    const found = { Accept: "application/json" };
    if (apiKey()) found.Authorization = "Bearer " + apiKey();
    return found;
  }

  async function getJSON(path, method) {
    const response = await fetch(path, { method: method || "GET", headers: headers() });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (body && body.error) || { code: String(response.status), message: response.statusText };
      throw Object.assign(new Error(error.message), { code: error.code });
    }
    return body;
  }

  async function loadAssistants() {
    try {
      const { assistants } = await getJSON("/assistants");
      ui.assistant.replaceChildren();
      for (const a of assistants) {
        const label = a.id + " (" + a.model + (a.tools.length ? ", " + a.tools.length + " tools" : "") + ")";
        const option = el("option", { value: a.id, text: label });
        if (a.default) option.selected = true;
        ui.assistant.append(option);
      }
    } catch (error) {
      showError(error.code || "assistants", error.message);
    }
  }

  async function newThread() {
    const id = ui.assistant.value;
    try {
      const { thread_id } = await getJSON("/start" + (id ? "?assistant_id=" + encodeURIComponent(id) : ""));
      setThread(thread_id);
      ui.transcript.replaceChildren();
      note("New thread " + thread_id + " with " + (id || "the default assistant") + ".");
      ui.message.focus();
      return thread_id;
    } catch (error) {
      showError(error.code || "start", error.message);
      return null;
    }
  }

  function setThread(id) {
    ui.thread.value = id;
    history.replaceState(null, "", "#thread=" + encodeURIComponent(id));
  }

  async function loadHistory() {
    const id = ui.thread.value.trim();
    if (!id) { showError("no_thread", "Start a thread or paste a thread id first."); return; }
    setThread(id);
    ui.transcript.replaceChildren();
    let cursor = null;
    try {
      do {
        const query = "?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
        const page = await getJSON("/threads/" + encodeURIComponent(id) + "/messages" + query);
        for (const m of page.messages) message(m.role, m.text);
        cursor = page.has_more ? page.next_cursor : null;
      } while (cursor);
      note("History of " + id + " loaded.");
    } catch (error) {
      showError(error.code || "history", error.message);
    }
  }

  // ---- WebSocket -----------------------------------------------------------------

  async function streamURL() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/stream";
    if (!apiKey()) return url;
    // A browser cannot set headers on a WebSocket: a single-use ticket stands for the key.
    const { ticket } = await getJSON("/ws-tickets", "POST");
    return url + "?ticket=" + encodeURIComponent(ticket);
  }

  async function connect() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) return state.socket;
    let url;
    try {
      url = await streamURL();
    } catch (error) {
      showError(error.code || "ws_ticket", error.message);
      return null;
    }
    return new Promise((resolve) => {
      const socket = new WebSocket(url);
      state.socket = socket;
      setConnection("Connecting…");
      socket.addEventListener("open", () => {
        state.retry = 0;
        setConnection("Connected");
        resolve(socket);
      });
      socket.addEventListener("message", (event) => {
        let payload;
        try { payload = JSON.parse(event.data); } catch (_) { return; }
        onEvent(payload);
      });
      socket.addEventListener("close", () => {
        if (state.socket !== socket) return;
        state.socket = null;
        setConnection("Disconnected");
        if (state.run && ui.keepRunning.checked) resumeLater();
        else if (state.run || state.starting) endRun();
        resolve(null);
      });
    });
  }

  function resumeLater() {
    const delay = Math.min(5000, 250 * 2 ** state.retry);
    state.retry += 1;
    setConnection("Connection lost: resuming in " + Math.round(delay / 100) / 10 + " s");
    setTimeout(resume, delay);
  }

  async function resume() {
    if (!state.run) return;
    const socket = await connect();
    if (!socket) return;
    note("Resuming the run after event " + state.run.lastSeq + ".");
    send({ type: "resume", run_id: state.run.id, thread_id: ui.thread.value, after: state.run.lastSeq });
  }

  function send(frame) {
    state.frames += 1;
    state.socket.send(JSON.stringify({ id: "f" + state.frames, ...frame }));
  }

  // ---- Run events ----------------------------------------------------------------

  function onEvent(e) {
    if (state.run && e.run_id === state.run.id && typeof e.seq === "number") {
      if (e.seq <= state.run.lastSeq) return;  // replayed after a resume: already shown
      state.run.lastSeq = e.seq;
    }
    switch (e.type) {
      case "run.started": return onStarted(e);
      case "message.delta": return onDelta(e);
      case "message.completed": return onCompleted(e);
      case "tool_call.started": return onToolStarted(e);
      case "tool_call.completed": return onToolCompleted(e);
      case "tool_call.approval_required": return onApprovalRequired(e);
      case "run.completed":
      case "run.cancelled":
      case "run.requires_approval": return onFinal(e);
      case "cancel.accepted": note("Cancelling the run…"); return;
      case "error": return onError(e);
      default: return;
    }
  }

  function onStarted(e) {
    state.starting = false;
    state.run = { id: e.run_id, lastSeq: e.seq || 0, message: null, tools: new Map(), pending: new Map() };
    busy(true);
  }

  function answer() {
    if (!state.run.message) {
      const node = message("assistant", "");
      node.setAttribute("aria-busy", "true");
      state.run.message = node;
    }
    return state.run.message;
  }

  function onDelta(e) {
    if (!state.run) return;
    answer().querySelector(".text").append(e.text);
  }

  function onCompleted(e) {
    if (!state.run) return;
    const node = answer();
    node.querySelector(".text").textContent = e.text;
    node.setAttribute("aria-busy", "false");
    state.run.message = null;
  }

  function field(label, value) {
    return el("div", {}, el("strong", { text: label + ": " }), el("pre", { text: value }));
  }

  function onToolStarted(e) {
    if (!state.run) return;
    state.run.message = null;
    const status = el("span", { class: "tool-status", text: "running…" });
    const node = add(el("li", { class: "tool", "data-call-id": e.id },
      el("details", { open: "" },
        el("summary", {}, "Tool ", el("code", { class: "tool-name", text: e.name }), " · ", status,
          el("span", { class: "tool-duration" })),
        field("arguments", e.arguments),
        el("div", { class: "tool-output" }))));
    state.run.tools.set(e.id, node);
  }

  function onToolCompleted(e) {
    if (!state.run) return;
    let node = state.run.tools.get(e.id);
    if (!node) { onToolStarted({ id: e.id, name: e.name, arguments: "" }); node = state.run.tools.get(e.id); }
    const status = node.querySelector(".tool-status");
    status.textContent = e.status;
    status.className = "tool-status status-" + e.status;
    node.querySelector(".tool-duration").textContent = " · " + e.duration_ms + " ms";
    node.querySelector(".tool-output").replaceChildren(field("output", e.output));
  }

  function onApprovalRequired(e) {
    if (!state.run) return;
    state.run.message = null;
    const reasonId = "reason-" + e.id;
    const approve = el("button", { type: "button", class: "approve", text: "Approve" });
    const deny = el("button", { type: "button", class: "deny secondary", text: "Deny" });
    const reason = el("input", { id: reasonId, type: "text", class: "reason" });
    const node = add(el("li", { class: "approval", "data-call-id": e.id, role: "group",
      "aria-label": "Approve " + e.name },
      el("p", {}, "The assistant wants to call ", el("code", { text: e.name }), ":"),
      el("pre", { text: e.arguments }),
      el("div", { class: "buttons" }, approve, deny,
        el("label", { for: reasonId, text: "Reason (if denied)" }), reason)));
    const decide = (ok) => {
      approve.disabled = deny.disabled = reason.disabled = true;
      node.append(el("p", { class: "note", text: ok ? "Approved." : "Denied." }));
      state.run.pending.set(e.id, { call_id: e.id, approve: ok, reason: reason.value || null });
      sendDecisionsWhenComplete();
    };
    approve.addEventListener("click", () => decide(true));
    deny.addEventListener("click", () => decide(false));
    state.run.pending.set(e.id, null);
    approve.focus();
  }

  function sendDecisionsWhenComplete() {
    const run = state.run;
    if (!run || !run.awaiting) return;
    const decisions = [...run.pending.values()];
    if (decisions.some((d) => d === null)) return;
    state.run = null;
    state.starting = true;
    busy(true);
    send({ type: "approvals", run_id: run.id, thread_id: ui.thread.value, decisions: decisions });
  }

  function usage(e) {
    const u = e.usage || { input_tokens: 0, output_tokens: 0 };
    const tools = (e.tool_calls || []).length;
    return "Run " + e.status + " · " + u.input_tokens + " input / " + u.output_tokens +
      " output tokens" + (tools ? " · " + tools + " tool call" + (tools > 1 ? "s" : "") : "");
  }

  function onFinal(e) {
    if (state.run && state.run.message) state.run.message.setAttribute("aria-busy", "false");
    add(el("li", { class: "usage", text: usage(e) }));
    if (e.type === "run.requires_approval" && state.run) {
      state.run.awaiting = true;
      ui.cancel.disabled = true;
      sendDecisionsWhenComplete();
      return;
    }
    endRun();
  }

  function onError(e) {
    showError(e.code, e.message);
    // An error of our run ends it; one refusing a frame we sent (no run_id) ends what it asked.
    if (!e.run_id || (state.run && e.run_id === state.run.id)) endRun();
  }

  function endRun() {
    state.run = null;
    state.starting = false;
    busy(false);
  }

  // ---- Wiring --------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    const text = ui.message.value;
    if (!text.trim() || state.run || state.starting) return;
    const thread = ui.thread.value.trim() || await newThread();
    if (!thread) return;
    const socket = await connect();
    if (!socket) { showError("unavailable", "Could not connect to /stream."); return; }
    message("user", text);
    ui.message.value = "";
    state.starting = true;
    busy(true);
    const frame = { thread_id: thread, message: text };
    if (ui.keepRunning.checked) frame.on_disconnect = "continue";
    send(frame);
  }

  ui.composer.addEventListener("submit", submit);
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.cancel.addEventListener("click", () => {
    if (state.run && state.socket) send({ type: "cancel", run_id: state.run.id, thread_id: ui.thread.value });
  });
  ui.newThread.addEventListener("click", newThread);
  ui.loadHistory.addEventListener("click", loadHistory);
  ui.thread.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); loadHistory(); }
  });

  // Test hook and a way to see resume work by hand: drop the socket as a network would.
  window.playground = { dropConnection: () => state.socket && state.socket.close(4000, "dropped") };

  ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) || "";
  ui.apiKey.addEventListener("change", () => {
    sessionStorage.setItem(KEY_STORAGE, apiKey());
    loadAssistants();
  });

  loadAssistants().then(() => {
    const match = /^#thread=(.+)$/.exec(location.hash);
    if (match) { ui.thread.value = decodeURIComponent(match[1]); loadHistory(); }
  });
  busy(false);
})();
