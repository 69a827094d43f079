// One plan: evidence, predicted KPIs (baseline vs plan), each signal's phase sequence now and in
// the plan, its history, and approve/reject for operators and admins. Charts with Plotly.
import { api, canPost, decides, el, kpiChanges, nav, num, showError, when } from "/static/common.js";

const planId = decodeURIComponent(location.pathname.split("/").pop());
const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
//: what a phase is, by the letters of its SUMO state (one per controlled link)
const KINDS = {
  green: "#2ca02c",
  yellow: "#f2c200",
  "red-amber": "#ff7f0e",
  "all-red": "#c0392b",
};

export function phaseKind(state) {
  if (/[yY]/.test(state)) return "yellow";
  if (/[gG]/.test(state)) return "green";
  if (/u/.test(state)) return "red-amber";
  return "all-red";
}

function evidence(plan) {
  const list = document.getElementById("evidence");
  const evaluation = plan.evaluation || {};
  const facts = [
    ["Method", plan.method],
    ["Scenario (network and demand)", evaluation.scenario || plan.scenario || "—"],
    ["Seeds", (evaluation.seeds || []).join(", ") || "—"],
    ["Compared with", evaluation.baseline_method || "the network's own programs"],
    ["Valid", `${when(plan.valid_from)} to ${when(plan.valid_to)}`],
    ["Signals", plan.signals.join(", ")],
    ["Proposed", when(plan.created_at)],
    ["Published", plan.published_at ? when(plan.published_at) : plan.publish_error || "not yet"],
  ];
  for (const [key, value] of Object.entries(evaluation)) {
    if (!["scenario", "seeds", "baseline_method", "baseline", "plan"].includes(key)) {
      facts.push([key, typeof value === "string" ? value : JSON.stringify(value)]);
    }
  }
  if (plan.approval_publish) {
    facts.push(["Approval sent", plan.approval_publish === "published" ? when(plan.approval_published_at) : `pending: ${plan.approval_publish_error || "waiting for the broker"}`]);
  }
  list.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

function kpiChart(plan) {
  const changes = kpiChanges(plan.evaluation);
  const trace = (label, pick, colour) => ({
    type: "bar",
    name: label,
    x: changes.map((k) => k.name),
    y: changes.map((k) => pick(k).mean),
    marker: { color: colour },
    error_y: {
      type: "data",
      symmetric: false,
      array: changes.map((k) => pick(k).ci95[1] - pick(k).mean),
      arrayminus: changes.map((k) => pick(k).mean - pick(k).ci95[0]),
    },
    hovertemplate: "%{x}: %{y:.2f}<extra>" + label + "</extra>",
  });
  const annotations = changes.map((k) => ({
    x: k.name,
    y: Math.max(k.before.ci95[1], k.after.ci95[1]),
    yanchor: "bottom",
    showarrow: false,
    text: `${k.change > 0 ? "+" : ""}${num(k.change)}${k.percent === null ? "" : ` (${k.change > 0 ? "+" : ""}${num(k.percent)} %)`}`,
  }));
  Plotly.newPlot(
    "kpis",
    [trace("baseline", (k) => k.before, "#8c96a3"), trace("plan", (k) => k.after, "#1f77b4")],
    { barmode: "group", height: 320, margin: { t: 30, r: 20, b: 40, l: 60 }, annotations, legend: { orientation: "h" } },
    PLOT_CONFIG,
  );
}

// One signal: two rows (now, plan), each its phases laid over the cycle, coloured by kind.
function phaseChart(node, tlsId, before, after) {
  const rows = [];
  if (before) rows.push(["now (before)", before]);
  rows.push(["plan (after)", after]);
  const traces = Object.entries(KINDS).map(([kind, colour]) => ({
    type: "bar",
    orientation: "h",
    name: kind,
    x: [],
    base: [],
    y: [],
    text: [],
    hovertext: [],
    marker: { color: colour, line: { color: "#ffffff", width: 1 } },
    textposition: "inside",
    insidetextanchor: "middle",
    hovertemplate: "%{y}: phase %{text}, %{x:.0f} s from %{base:.0f} s<br>%{hovertext}<extra>%{fullData.name}</extra>",
  }));
  const byKind = Object.fromEntries(traces.map((t) => [t.name, t]));
  for (const [label, program] of rows) {
    let start = 0;
    program.phases.forEach((phase, index) => {
      const trace = byKind[phaseKind(phase.state)];
      trace.x.push(phase.duration_s);
      trace.base.push(start);
      trace.y.push(`${label}: cycle ${num(program.cycle_s, 0)} s, offset ${num(program.offset_s, 0)} s`);
      trace.text.push(String(index + 1));
      trace.hovertext.push(phase.state);
      start += phase.duration_s;
    });
  }
  Plotly.newPlot(
    node,
    traces.filter((t) => t.x.length),
    {
      title: { text: `signal ${tlsId}`, font: { size: 14 } },
      barmode: "overlay",
      height: 110 + 50 * rows.length,
      margin: { t: 36, r: 20, b: 40, l: 260 },
      xaxis: { title: { text: "seconds into the cycle" }, rangemode: "tozero" },
      yaxis: { autorange: "reversed" },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
    },
    PLOT_CONFIG,
  );
}

async function phases(plan) {
  const box = document.getElementById("phases");
  const note = document.getElementById("programs-note");
  let current = { programs: {}, error: null };
  try {
    current = await api(`/api/plans/${encodeURIComponent(planId)}/programs`);
  } catch (error) {
    current.error = error.message;
  }
  note.textContent = current.error
    ? `The network's current programs cannot be read (${current.error}); only the plan's are shown.`
    : "Each bar is one phase (numbered), coloured green, yellow, red-amber or all-red by its signal state.";
  box.replaceChildren();
  for (const record of plan.records) {
    const node = el("div", { className: "chart phase-chart", dataset: { signal: record.tls_id } });
    box.append(node);
    phaseChart(node, record.tls_id, current.programs[record.tls_id], record);
  }
}

function history(plan) {
  const body = document.querySelector("#events tbody");
  body.replaceChildren(
    ...plan.events.map((e) => el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.state), el("td", {}, e.actor), el("td", {}, e.note))),
  );
}

function showState(plan) {
  const badge = document.getElementById("state");
  badge.textContent = plan.state;
  badge.className = `state ${plan.state}`;
  document.body.dataset.state = plan.state;
}

async function decide(action) {
  const note = document.getElementById("note").value.trim();
  if (action === "reject" && !note) {
    showError(new Error("Say why the plan is rejected (the reason field)."));
    return;
  }
  const body = action === "approve" ? { comment: note } : { reason: note };
  for (const button of document.querySelectorAll("#actions button")) button.disabled = true;
  try {
    const plan = await api(`/api/plans/${encodeURIComponent(planId)}/${action}`, { method: "POST", body });
    document.getElementById("error").textContent = "";
    render(plan, true);
  } catch (error) {
    showError(error);
    for (const button of document.querySelectorAll("#actions button")) button.disabled = false;
  }
}

let user = null;

function render(plan, decided = false) {
  document.getElementById("plan-id").textContent = plan.plan_id;
  document.title = `Plan ${plan.plan_id} · citybrain console`;
  showState(plan);
  evidence(plan);
  history(plan);
  const actions = document.getElementById("actions");
  // the buttons are for operators and admins, on a plan still waiting for a decision
  actions.hidden = !(decides(user) && plan.state === "proposed");
  if (!actions.hidden && !canPost()) {
    for (const button of actions.querySelectorAll("button")) button.disabled = true;
    showError(new Error("Log in again in this tab to approve or reject (the page has no CSRF token)."));
  }
  if (!decided) {
    kpiChart(plan);
    return phases(plan);
  }
}

async function main() {
  user = await nav("plans");
  document.getElementById("approve").addEventListener("click", () => decide("approve"));
  document.getElementById("reject").addEventListener("click", () => decide("reject"));
  const plan = await api(`/api/plans/${encodeURIComponent(planId)}`);
  await render(plan);
  document.body.dataset.ready = "true";
}

main().catch(showError);
