// The two forms that change something: restart containers of a pod, start a rollout. Each
// first sends the request with ?dryRun=true and shows what would happen; the real call is
// possible only for exactly the inputs that were checked, and carries an Idempotency-Key so a
// repeated click answers the same restart or rollout.

import { call, newKey } from "./api.js";
import { h, replace, say, stateLabel } from "./dom.js";

function field(id, label, input, help) {
  input.id = id;
  return h(
    "p",
    { className: "field" },
    h("label", { for: id }, label),
    input,
    help ? h("span", { className: "help", id: `${id}-help` }, help) : null,
  );
}

function list(text) {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function labels(text) {
  const out = {};
  for (const pair of list(text)) {
    const [key, ...rest] = pair.split("=");
    out[key.trim()] = rest.join("=").trim();
  }
  return out;
}

// The shared flow: check (dry run) -> show -> do it for real.
function checkedForm(view, { title, fields, body, collection, describe, submitLabel, done }) {
  const result = h("div", { id: "dry-run", className: "dry-run", role: "status", "aria-live": "polite" });
  const check = h("button", { type: "submit", id: "dry-run-button" }, "Check (dry run)");
  const submit = h("button", { type: "button", id: "submit-button", className: "primary", disabled: true }, submitLabel);
  const form = h("form", { className: "card" }, h("h1", {}, title), fields, h("p", { className: "actions" }, check, submit), result);
  let checked = null; // {json, key} of the inputs the dry run accepted

  form.addEventListener("input", () => {
    checked = null;
    submit.disabled = true;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request = body();
    if (!request) return;
    replace(result, "Checking…");
    const answer = await call("POST", collection, { query: { dryRun: "true" }, body: request });
    if (!answer.ok) {
      replace(result, h("p", { className: "notice", role: "alert" }, `Refused: ${answer.error}`));
      return;
    }
    checked = { json: JSON.stringify(request), key: newKey() };
    replace(result, h("h2", {}, "Dry run: this would happen"), describe(answer.body));
    submit.disabled = false;
    submit.focus();
  });
  submit.addEventListener("click", async () => {
    const request = body();
    if (!checked || !request || JSON.stringify(request) !== checked.json) return;
    submit.disabled = true;
    const answer = await call("POST", collection, { body: request, key: checked.key });
    if (!answer.ok) {
      replace(result, h("p", { className: "notice", role: "alert" }, `Refused: ${answer.error}`));
      submit.disabled = false;
      return;
    }
    say(`Created ${answer.body.name}.`, "ok");
    done(answer.body.name);
  });
  replace(view, form);
  form.querySelector("input").focus();
}

export function restartForm(view, namespace, done) {
  const pod = h("input", { required: true, autocomplete: "off", spellcheck: "false" });
  const containers = h("input", { autocomplete: "off", spellcheck: "false", "aria-describedby": "restart-containers-help" });
  const reason = h("input", { autocomplete: "off", maxlength: 256 });
  checkedForm(view, {
    title: `Restart containers of a pod in ${namespace}`,
    fields: [
      field("restart-pod", "Pod", pod),
      field("restart-containers", "Containers (comma separated)", containers, "Empty: every container of the pod."),
      field("restart-reason", "Reason", reason),
    ],
    body: () => {
      const request = { pod: pod.value.trim() };
      const names = list(containers.value);
      if (names.length) request.containers = names;
      if (reason.value.trim()) request.reason = reason.value.trim();
      return request;
    },
    collection: `namespaces/${encodeURIComponent(namespace)}/restarts`,
    submitLabel: "Restart now",
    describe: (restart) =>
      h(
        "dl",
        { className: "facts" },
        h("dt", {}, "Pod"),
        h("dd", {}, restart.pod, restart.node ? ` on node ${restart.node}` : ""),
        h("dt", {}, "Containers"),
        h("dd", {}, restart.containers.join(", ")),
        h("dt", {}, "Strategy"),
        h(
          "dd",
          {},
          `failurePolicy ${restart.strategy.failurePolicy}, ` +
            `${restart.strategy.orderedRecreate ? "one at a time" : "all at once"}, ` +
            `deadline ${restart.activeDeadlineSeconds} s`,
        ),
        restart.warnings.length ? [h("dt", {}, "Warnings"), h("dd", {}, restart.warnings.join("; "))] : null,
      ),
    done,
  });
}

export function rolloutForm(view, namespace, done) {
  const kind = h(
    "select",
    {},
    ["CloneSet", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "selector"].map((k) =>
      h("option", { value: k }, k === "selector" ? "Pods matching labels" : k),
    ),
  );
  const name = h("input", { autocomplete: "off", spellcheck: "false", "aria-describedby": "rollout-target-help" });
  const containers = h("input", { autocomplete: "off", spellcheck: "false" });
  const maxUnavailable = h("input", { value: "1", autocomplete: "off", inputmode: "text", "aria-describedby": "rollout-max-help" });
  const pauseOnFailure = h("input", { type: "checkbox", checked: true });
  const reason = h("input", { autocomplete: "off", maxlength: 256 });
  checkedForm(view, {
    title: `Start a rollout in ${namespace}`,
    fields: [
      field("rollout-kind", "Workload kind", kind),
      field("rollout-target", "Workload name, or labels (app=shop,tier=web)", name, "For “Pods matching labels”: key=value pairs, comma separated."),
      field("rollout-containers", "Containers (comma separated)", containers, "Empty: every container."),
      field("rollout-max", "Max unavailable", maxUnavailable, "A number of pods, or a percentage such as 25%."),
      h("p", { className: "field checkbox" }, pauseOnFailure, h("label", { for: "rollout-pause" }, "Pause when a pod's restart fails")),
      field("rollout-reason", "Reason", reason),
    ],
    body: () => {
      const request = {};
      if (kind.value === "selector") request.selector = { matchLabels: labels(name.value) };
      else request.target = { kind: kind.value, name: name.value.trim() };
      const names = list(containers.value);
      if (names.length) request.containers = names;
      const budget = maxUnavailable.value.trim();
      request.maxUnavailable = /^\d+$/.test(budget) ? Number(budget) : budget;
      request.pauseOnFailure = pauseOnFailure.checked;
      if (reason.value.trim()) request.reason = reason.value.trim();
      return request;
    },
    collection: `namespaces/${encodeURIComponent(namespace)}/rollouts`,
    submitLabel: "Start rollout",
    describe: (rollout) => [
      h("p", {}, `${rollout.pods.length} pods, at most ${rollout.resolvedMaxUnavailable} unavailable at once, in this order:`),
      h(
        "ol",
        { className: "plan" },
        rollout.pods.map((p) => h("li", {}, p.pod, " ", stateLabel(p.state))),
      ),
      rollout.message ? h("p", {}, rollout.message) : null,
    ],
    done,
  });
  pauseOnFailure.id = "rollout-pause";
}
