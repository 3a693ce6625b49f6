// The live view: sign-in, a namespace's restarts and rollouts kept current from the watch
// streams, a rollout's page, and the forms that start restarts and rollouts. The address's
// fragment says which page (#/ns/NAMESPACE, #/ns/NAMESPACE/rollouts/NAME, ...), so the token
// never appears in it.

import { call, onUnauthorized, signIn, signOut, token, watchList } from "./api.js";
import { h, replace, say, stateLabel, when } from "./dom.js";
import { restartForm, rolloutForm } from "./forms.js";
import { rolloutPage } from "./rollout.js";

const view = document.getElementById("view");
let leave = () => {}; // stops the current page's streams

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function namespaceLink(namespace) {
  return `#/ns/${encodeURIComponent(namespace)}`;
}

// ---------------------------------------------------------------- sign-in

function signInPage(reason) {
  document.getElementById("signed-in").hidden = true;
  const input = h("input", {
    id: "token-input",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const namespace = h("input", {
    id: "namespace-input",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    pattern: "[a-z0-9]([a-z0-9\\-]*[a-z0-9])?", // a DNS-1123 label
    value: sessionStorage.getItem("crr-gateway.namespace") || "",
  });
  const form = h(
    "form",
    { className: "card", id: "sign-in" },
    h("h1", {}, "Sign in"),
    reason ? h("p", { className: "notice", role: "alert" }, reason) : null,
    h("label", { for: "token-input" }, "Bearer token"),
    input,
    h(
      "p",
      { id: "token-help", className: "help" },
      "A token crr-gateway accepts: a service-account token of a caller allowed in the namespace, ",
      "or one from the service's tokens file. It stays in this tab only (sessionStorage) and ",
      "is sent in the Authorization header.",
    ),
    h("label", { for: "namespace-input" }, "Namespace"),
    namespace,
    h("button", { type: "submit", className: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    signIn(input.value);
    input.value = "";
    const ns = namespace.value.trim();
    const answer = await call("GET", `namespaces/${encodeURIComponent(ns)}/rollouts`, {
      query: { limit: 1 },
    });
    if (answer.status === 401) return; // onUnauthorized shows the form again
    if (!answer.ok) {
      signOut();
      say(`Not signed in: ${answer.error}`, "error");
      return;
    }
    sessionStorage.setItem("crr-gateway.namespace", ns);
    go(namespaceLink(ns));
  });
  replace(view, form);
  input.focus();
}

onUnauthorized((detail) => {
  signOut();
  leave();
  leave = () => {};
  signInPage(`The service refused the token (${detail}). Sign in again.`);
});

// ---------------------------------------------------------------- a namespace

function progressText(rollout) {
  const total = rollout.pods.length;
  const done = total - rollout.counts.Waiting - rollout.counts.Restarting;
  return `${done} of ${total} pods done`;
}

function targetText(rollout) {
  if (rollout.target) return `${rollout.target.kind} ${rollout.target.name}`;
  const labels = rollout.selector && rollout.selector.matchLabels;
  return labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",") : "selector";
}

function restartState(restart) {
  if (restart.finished) return restart.result || "Finished";
  return restart.phase || "Pending";
}

// Rows kept by name and updated in place, so focus stays where a keyboard left it.
function liveTable(caption, columns, cells, empty) {
  const body = h("tbody");
  const rows = new Map();
  const nothing = h("tr", { className: "empty" }, h("td", { colspan: columns.length }, empty));
  const state = h("span", { className: "stream-state" }, "connecting…");
  const table = h(
    "table",
    {},
    h("caption", {}, caption, " ", state),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  function update(items) {
    for (const [name, row] of rows) {
      if (!items.has(name)) {
        row.remove();
        rows.delete(name);
      }
    }
    const names = [...items.keys()].sort();
    if (names.length === 0) {
      body.replaceChildren(nothing);
      return;
    }
    nothing.remove();
    names.forEach((name, index) => {
      let row = rows.get(name);
      if (!row) {
        row = h("tr", { dataset: { name } });
        rows.set(name, row);
      }
      cells(items.get(name)).forEach((cell, i) => {
        const td = row.children[i] || row.appendChild(h("td"));
        const fresh = h("td", {}, cell);
        if (fresh.innerHTML !== td.innerHTML) td.replaceChildren(...fresh.childNodes);
      });
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    });
  }
  function streamState(text) {
    state.textContent = text;
  }
  return { table, update, streamState };
}

function streamStateText(what) {
  return (state, detail) => {
    const texts = {
      connecting: "(connecting…)",
      live: "(live)",
      reconnecting: "(reconnecting…)",
      error: `(not live: ${detail})`,
    };
    what.streamState(texts[state] || "");
  };
}

function namespacePage(namespace) {
  const rollouts = liveTable(
    "Rollouts",
    ["Name", "Target", "Phase", "Progress", "Unavailable / budget", "Created"],
    (r) => [
      h("a", { href: `${namespaceLink(namespace)}/rollouts/${encodeURIComponent(r.name)}` }, r.name),
      targetText(r),
      stateLabel(r.phase),
      progressText(r),
      `${r.unavailable} / ${r.resolvedMaxUnavailable}`,
      when(r.createdAt),
    ],
    "No rollouts in this namespace.",
  );
  const restarts = liveTable(
    "Restarts",
    ["Name", "Pod", "Containers", "State", "Message", "Created"],
    (r) => [
      r.name,
      r.pod,
      r.containers.join(", "),
      stateLabel(restartState(r)),
      r.failureReason ? `${r.failureReason}: ${r.message || ""}` : r.message || "",
      when(r.createdAt),
    ],
    "No restarts in this namespace.",
  );
  replace(
    view,
    h(
      "section",
      { "aria-labelledby": "ns-title" },
      h("h1", { id: "ns-title" }, "Namespace ", h("span", { className: "mono" }, namespace)),
      h(
        "p",
        { className: "actions" },
        h("a", { className: "button", href: `${namespaceLink(namespace)}/new/restart` }, "Restart containers of a pod…"),
        h("a", { className: "button", href: `${namespaceLink(namespace)}/new/rollout` }, "Start a rollout…"),
      ),
      rollouts.table,
      restarts.table,
    ),
  );
  const base = `namespaces/${encodeURIComponent(namespace)}`;
  const stops = [
    watchList(`${base}/rollouts`, { onChange: rollouts.update, onState: streamStateText(rollouts) }),
    watchList(`${base}/restarts`, { onChange: restarts.update, onState: streamStateText(restarts) }),
  ];
  return () => stops.forEach((stop) => stop());
}

function choosePage() {
  const input = h("input", {
    id: "namespace-choice",
    required: true,
    autocomplete: "off",
    value: sessionStorage.getItem("crr-gateway.namespace") || "",
  });
  const form = h(
    "form",
    { className: "card" },
    h("h1", {}, "Open a namespace"),
    h("label", { for: "namespace-choice" }, "Namespace"),
    input,
    h("button", { type: "submit", className: "primary" }, "Open"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("crr-gateway.namespace", input.value.trim());
    go(namespaceLink(input.value.trim()));
  });
  replace(view, form);
  input.focus();
}

// ---------------------------------------------------------------- routing

function route() {
  leave();
  leave = () => {};
  say("");
  if (!token()) {
    signInPage("");
    return;
  }
  document.getElementById("signed-in").hidden = false;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "ns" && parts[1]) {
    const namespace = parts[1];
    document.getElementById("current-namespace").textContent = namespace;
    document.getElementById("namespace-link").setAttribute("href", namespaceLink(namespace));
    if (parts[2] === "rollouts" && parts[3]) {
      leave = rolloutPage(view, namespace, parts[3]);
    } else if (parts[2] === "new" && parts[3] === "restart") {
      restartForm(view, namespace, () => go(namespaceLink(namespace)));
    } else if (parts[2] === "new" && parts[3] === "rollout") {
      rolloutForm(view, namespace, (name) => go(`${namespaceLink(namespace)}/rollouts/${encodeURIComponent(name)}`));
    } else {
      leave = namespacePage(namespace);
    }
  } else {
    choosePage();
  }
  const heading = view.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    if (!view.contains(document.activeElement)) heading.focus();
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  leave();
  leave = () => {};
  go("#/");
});
window.addEventListener("hashchange", route);
route();
