// Building the page: elements from data with text nodes only (nothing the service or a user
// typed is ever parsed as HTML), the status line, and the confirmation dialog.

// h("a", {href: "#/x", className: "link"}, "text", child...)
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

// The polite live region under the header: what just happened, for everyone.
export function say(text, kind = "info") {
  const status = document.getElementById("status");
  status.className = `status status-${kind}`;
  status.textContent = text;
}

// A modal confirmation; resolves true when the person confirms. Escape or "Keep" cancels.
export function confirmAction(question, detail, confirmLabel) {
  const dialog = document.getElementById("confirm");
  replace(dialog.querySelector(".confirm-question"), question);
  replace(dialog.querySelector(".confirm-detail"), detail);
  const yes = dialog.querySelector(".confirm-yes");
  yes.textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector(".confirm-no").focus();
  });
}

export function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

// The symbol that goes with a state's name (never alone: the name is always written too).
export const SYMBOLS = {
  Waiting: "○",
  Restarting: "↻",
  Succeeded: "✓",
  Failed: "✗",
  Skipped: "–",
  Gone: "∅",
  Progressing: "↻",
  Paused: "❚❚",
  Cancelled: "⊘",
  Pending: "○",
  Recreating: "↻",
  Completed: "✓",
};

export function stateLabel(state) {
  return h(
    "span",
    { className: `state state-${String(state).toLowerCase()}` },
    h("span", { className: "state-symbol", "aria-hidden": "true" }, SYMBOLS[state] || "•"),
    " ",
    h("span", { className: "state-name" }, state),
  );
}
