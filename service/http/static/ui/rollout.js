// A rollout's page: its pods as a grid (colour, symbol and state name), progress, unavailable
// pods against the budget, the message, and pause / resume / cancel after a confirmation. Kept
// current from the namespace's rollout watch stream.

import { call, watchList } from "./api.js";
import { confirmAction, h, replace, say, stateLabel, when } from "./dom.js";

const ACTIONS = {
  pause: {
    label: "Pause",
    question: "Pause this rollout?",
    detail: "No more pods are started; restarts already running finish.",
  },
  resume: {
    label: "Resume",
    question: "Resume this rollout?",
    detail: "It goes on with the next pods; a failed pod stays failed.",
  },
  cancel: {
    label: "Cancel rollout",
    question: "Cancel this rollout?",
    detail: "Nothing more is started and restarts not started yet are deleted; running ones finish. This cannot be undone.",
  },
};

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

function target(rollout) {
  if (rollout.target) {
    const t = rollout.target;
    return `${t.kind} ${t.name}${t.apiVersion ? ` (${t.apiVersion})` : ""}`;
  }
  return `pods matching ${JSON.stringify(rollout.selector)}`;
}

export function rolloutPage(view, namespace, name) {
  const title = h("h1", { id: "rollout-title" }, "Rollout ", h("span", { className: "mono" }, name));
  const phase = h("p", { id: "rollout-phase", className: "phase" }, "Loading…");
  const message = h("p", { id: "rollout-message", className: "message", role: "status" });
  const progress = h("progress", { id: "rollout-progress", max: 1, value: 0, "aria-labelledby": "progress-label" });
  const progressLabel = h("span", { id: "progress-label" });
  const budget = h("meter", { id: "rollout-budget", min: 0, max: 1, value: 0, "aria-labelledby": "budget-label" });
  const budgetLabel = h("span", { id: "budget-label" });
  const facts = h("dl", { className: "facts" });
  const pods = h("ol", { id: "pods", className: "pods", "aria-label": "Pods in restart order" });
  const buttons = {};
  for (const [action, text] of Object.entries(ACTIONS)) {
    buttons[action] = h("button", { type: "button", id: `rollout-${action}`, disabled: true }, text.label);
    buttons[action].addEventListener("click", () => act(action));
  }
  const legend = h(
    "ul",
    { className: "legend", "aria-label": "Pod states" },
    ["Waiting", "Restarting", "Succeeded", "Failed", "Skipped", "Gone"].map((s) => h("li", {}, stateLabel(s))),
  );
  replace(
    view,
    h(
      "section",
      { "aria-labelledby": "rollout-title" },
      h("p", {}, h("a", { href: `#/ns/${encodeURIComponent(namespace)}` }, `← Namespace ${namespace}`)),
      title,
      phase,
      message,
      h("div", { className: "gauges" },
        h("p", {}, progressLabel, progress),
        h("p", {}, budgetLabel, budget)),
      h("p", { className: "actions" }, buttons.pause, buttons.resume, buttons.cancel),
      h("h2", {}, "Pods"),
      legend,
      pods,
      h("h2", {}, "Details"),
      facts,
    ),
  );

  let current = null;

  function render(rollout) {
    current = rollout;
    replace(phase, "Phase: ", stateLabel(rollout.phase), rollout.finished ? " (finished)" : "");
    message.textContent = rollout.message || "";
    const total = rollout.pods.length;
    const done = total - rollout.counts.Waiting - rollout.counts.Restarting;
    progress.max = Math.max(total, 1);
    progress.value = done;
    const counts = Object.entries(rollout.counts)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(", ");
    progressLabel.textContent = `Progress: ${done} of ${total} pods done (${counts}) `;
    budget.max = Math.max(rollout.resolvedMaxUnavailable, 1);
    budget.value = rollout.unavailable;
    budget.high = rollout.resolvedMaxUnavailable;
    budgetLabel.textContent = `Unavailable now: ${rollout.unavailable} of a budget of ${rollout.resolvedMaxUnavailable} `;
    replace(
      pods,
      rollout.pods.map((pod) =>
        h(
          "li",
          { className: `pod state-${pod.state.toLowerCase()}`, dataset: { pod: pod.pod, state: pod.state } },
          h("span", { className: "pod-name" }, pod.pod),
          stateLabel(pod.state),
          pod.message ? h("span", { className: "pod-message" }, pod.message) : null,
        ),
      ),
    );
    replace(
      facts,
      fact("Target", target(rollout)),
      fact("Containers", rollout.containers ? rollout.containers.join(", ") : "all"),
      fact("Budget", `maxUnavailable ${rollout.maxUnavailable} (${rollout.resolvedMaxUnavailable} pods)`),
      fact("Pause on failure", rollout.pauseOnFailure ? "yes" : "no"),
      fact("Requested by", rollout.requestedBy || "—"),
      fact("Reason", rollout.reason || "—"),
      fact("Created", when(rollout.createdAt)),
      fact("Completed", rollout.completedAt ? when(rollout.completedAt) : "—"),
    );
    buttons.pause.disabled = rollout.phase !== "Progressing";
    buttons.resume.disabled = rollout.phase !== "Paused";
    buttons.cancel.disabled = rollout.finished;
  }

  async function act(action) {
    const text = ACTIONS[action];
    if (!(await confirmAction(text.question, text.detail, text.label))) {
      buttons[action].focus();
      return;
    }
    const path = `namespaces/${encodeURIComponent(namespace)}/rollouts/${encodeURIComponent(name)}/${action}`;
    const answer = await call("POST", path);
    if (answer.ok) {
      render(answer.body);
      say(`${text.label}: done. Phase ${answer.body.phase}.`, "ok");
    } else {
      say(`${text.label} failed: ${answer.error}`, "error");
    }
    buttons[action].focus();
  }

  return watchList(`namespaces/${encodeURIComponent(namespace)}/rollouts`, {
    onChange(items) {
      const rollout = items.get(name);
      if (rollout) {
        // an action's answer may be newer than a stream event still on its way
        if (!current || Number(rollout.resourceVersion) >= Number(current.resourceVersion)) render(rollout);
      } else {
        replace(phase, "This rollout does not exist (or no longer does).");
      }
    },
    onState(state, detail) {
      if (state === "error") say(`Not live: ${detail}`, "error");
    },
  });
}
