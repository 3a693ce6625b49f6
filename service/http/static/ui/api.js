// Talking to crr-gateway from the page: the bearer token (sessionStorage only, sent as a header,
// never put in a URL or logged), JSON calls answered with the body or the problem, and the
// namespace watch streams read with fetch (EventSource cannot send a header), resumed with
// Last-Event-ID after a break.

const TOKEN_KEY = "crr-gateway.token";
const API = new URL("../v1/", document.baseURI); // /ui/ -> /v1/, also behind a path prefix

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// Called when the service answers 401: the page goes back to the sign-in form.
let unauthorized = () => {};
export function onUnauthorized(callback) {
  unauthorized = callback;
}

export function apiUrl(path, query = {}) {
  const url = new URL(path.replace(/^\//, ""), API);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

// A problem+json (or anything else that is not a success) as one line a person can read.
export function describeProblem(status, body) {
  if (body && typeof body === "object") {
    const detail = body.detail || body.title || "";
    return `${status} ${body.title || ""}${detail && detail !== body.title ? `: ${detail}` : ""}`;
  }
  return `${status} ${String(body || "").slice(0, 200)}`;
}

// One JSON call: {ok, status, body, error}; a 401 also signs the page out.
export async function call(method, path, { query, body, key } = {}) {
  const extra = { Accept: "application/json" };
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (key) extra["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(apiUrl(path, query), {
      method,
      headers: headers(extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    return { ok: false, status: 0, body: null, error: `the service cannot be reached (${error.message})` };
  }
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  if (response.status === 401) unauthorized(describeProblem(401, parsed));
  return {
    ok: response.ok,
    status: response.status,
    body: parsed,
    error: response.ok ? "" : describeProblem(response.status, parsed),
  };
}

// An Idempotency-Key: a retried create answers the first one's result instead of a second.
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "ui-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- server-sent events

// The events of a text/event-stream body, as the HTML standard parses them.
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "", data: [], id: undefined, retry: undefined };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length || event.id !== undefined || event.retry !== undefined) {
          yield { event: event.event || "message", data: event.data.join("\n"), id: event.id, retry: event.retry };
        }
        event = { event: "", data: [], id: undefined, retry: undefined };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.event = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id" && !value.includes("\0")) event.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) event.retry = Number(value);
    }
  }
}

// Follows GET {path}?watch=true: the objects by name, kept current. `onChange(items)` gets a
// Map of name -> object after the first listing and after every change; `onState(state, detail)`
// hears "connecting", "live", "reconnecting" and "error". Returns a function that stops it.
export function watchList(path, { onChange, onState = () => {}, query = {} }) {
  let items = new Map();
  let listing = null; // the objects of a full listing while it arrives
  let lastEventId = "";
  let retryMs = 2000;
  let stopped = false;
  let controller = null;

  function apply(message) {
    if (message.event === "RESET") {
      listing = new Map();
      return;
    }
    const object = message.data ? JSON.parse(message.data) : {};
    if (message.event === "BOOKMARK") {
      if (object.initialEventsEnd && listing) {
        items = listing;
        listing = null;
        onChange(items);
      }
      return;
    }
    const into = listing || items;
    if (message.event === "ADDED" || message.event === "MODIFIED") into.set(object.name, object);
    else if (message.event === "DELETED") into.delete(object.name);
    else return;
    if (!listing) onChange(items);
  }

  async function follow() {
    while (!stopped) {
      controller = new AbortController();
      onState("connecting");
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastEventId) extra["Last-Event-ID"] = lastEventId;
        const response = await fetch(apiUrl(path, { ...query, watch: "true" }), {
          headers: headers(extra),
          signal: controller.signal,
          cache: "no-store",
        });
        if (!response.ok) {
          let body = null;
          try {
            body = await response.json();
          } catch {
            // not JSON
          }
          const detail = describeProblem(response.status, body);
          if (response.status === 401) {
            unauthorized(detail);
            return;
          }
          onState("error", detail);
        } else {
          onState("live");
          listing = null;
          for await (const message of serverSentEvents(response.body)) {
            if (message.retry !== undefined) retryMs = message.retry;
            if (message.id !== undefined) lastEventId = message.id;
            if (message.event !== "message") apply(message);
          }
          if (!stopped) onState("reconnecting");
        }
      } catch (error) {
        if (stopped) return;
        onState("reconnecting", error.message);
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  follow();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
