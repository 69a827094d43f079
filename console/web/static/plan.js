// One plan: evidence, predicted KPIs (baseline vs plan), each signal's phase sequence now and in
// the plan, a time-space diagram along the route its signals coordinate, once applied each
// signal's measured performance before and after, its history, and approve/reject for operators
// and admins. Charts with Plotly.
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
  if (evaluation.lake_versions) {
    // The gold table versions the demand was read from: `citybrain lake show TABLE --version N` reads them again.
    const versions = Object.entries(evaluation.lake_versions).map(([table, version]) => `${table} version ${version}`);
    facts.push(["Lake data (Delta versions)", versions.join(", ")]);
  }
  if (evaluation.incident_id) {
    // A plan for an incident (or the return from one): valid until the incident's expected end.
    facts.push(["Answers incident", evaluation.incident_id]);
  }
  for (const [key, value] of Object.entries(evaluation)) {
    if (!["scenario", "seeds", "baseline_method", "baseline", "plan", "lake_versions", "incident_id"].includes(key)) {
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

// Closed polygons in one trace, separated by nulls (Plotly fills each one), with a hover text each.
function polygons(items) {
  const trace = { x: [], y: [], text: [] };
  for (const { corners, label } of items) {
    for (const [x, y] of corners) {
      trace.x.push(x);
      trace.y.push(y);
      trace.text.push(label);
    }
    trace.x.push(null);
    trace.y.push(null);
    trace.text.push(null);
  }
  return trace;
}

// A through band's corners: a vehicle leaving the first signal at the band's start (and end)
// reaches each signal its arrival time later, at the progression speed.
export function bandCorners(band, signals) {
  const front = signals.map((s) => [band.start_s + s.arrival_s, s.distance_m]);
  const back = signals.map((s) => [band.end_s + s.arrival_s, s.distance_m]).reverse();
  return [...front, ...back, front[0]];
}

export function widestBand(bands) {
  return bands.length ? Math.max(...bands.map((b) => b.end_s - b.start_s)) : 0;
}

// One program ("before" or "after") of one direction: time across, distance up; at each signal
// a bar, red with the route movement's greens and yellows on it; the through bands filled, and
// the trajectories from the first signal's green start and end at the progression speed dashed.
function timeSpaceChart(node, answer, direction, program, distances) {
  const half = Math.max(distances.span * 0.012, 3);
  const bars = { red: [], green: [], yellow: [] };
  for (const s of direction.signals) {
    const d = s.distance_m;
    const rect = (a, b) => [[a, d - half], [b, d - half], [b, d + half], [a, d + half], [a, d - half]];
    bars.red.push({ corners: rect(0, answer.horizon_s), label: `${s.tls_id}: red (${s.movement})` });
    for (const i of s[program]) {
      bars[i.kind].push({
        corners: rect(i.start_s, i.end_s),
        label: `${s.tls_id}: ${i.kind} ${num(i.start_s)}–${num(i.end_s)} s (${num(i.end_s - i.start_s)} s)`,
      });
    }
  }
  const bands = direction.bands[program];
  const band = polygons(
    bands.map((b) => ({ corners: bandCorners(b, direction.signals), label: `through band: ${num(b.end_s - b.start_s)} s wide` })),
  );
  const first = direction.signals[0];
  const lines = { x: [], y: [] };
  for (const green of first[program].filter((i) => i.kind === "green")) {
    // where the axis cuts a green, that end is no change of the signal: no trajectory from it
    const ends = [green.start_s, green.end_s].filter((t) => t > 0 && t < answer.horizon_s);
    for (const start of ends) {
      for (const s of direction.signals) {
        lines.x.push(start + s.arrival_s);
        lines.y.push(s.distance_m);
      }
      lines.x.push(null);
      lines.y.push(null);
    }
  }
  const filled = (name, trace, colour) => ({
    type: "scatter",
    mode: "lines",
    name,
    ...trace,
    fill: "toself",
    fillcolor: colour,
    line: { width: 0, color: colour },
    hoverinfo: "text",
  });
  const traces = [
    filled("through band", band, "rgba(44, 160, 44, 0.18)"),
    {
      type: "scatter",
      mode: "lines",
      name: `progression ${num(direction.speed_mps * 3.6, 0)} km/h`,
      ...lines,
      line: { color: "#4b5563", width: 1, dash: "dash" },
      hoverinfo: "skip",
    },
    filled("red", polygons(bars.red), KINDS["all-red"]),
    filled("green", polygons(bars.green), KINDS.green),
    filled("yellow", polygons(bars.yellow), KINDS.yellow),
  ];
  const label = program === "before" ? "now (before)" : "plan (after)";
  Plotly.newPlot(
    node,
    traces,
    {
      title: { text: `${label}: widest through band ${num(widestBand(bands), 0)} s`, font: { size: 14 }, x: 0.01, xanchor: "left" },
      height: 300 + 24 * direction.signals.length,
      margin: { t: 40, r: 20, b: 50, l: 150 },
      xaxis: { title: { text: "simulation time (s)" }, range: [0, answer.horizon_s], zeroline: false },
      yaxis: {
        title: { text: "distance along the route (m)" },
        range: [distances.low - 4 * half, distances.high + 4 * half],
        tickvals: direction.signals.map((s) => s.distance_m),
        ticktext: direction.signals.map((s) => `${s.tls_id} · ${num(s.distance_m, 0)} m`),
        zeroline: false,
      },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      showlegend: true,
    },
    PLOT_CONFIG,
  );
}

function drawTimeSpace(answer, index) {
  const direction = answer.directions[index];
  const positions = direction.signals.map((s) => s.distance_m);
  const distances = { low: Math.min(...positions), high: Math.max(...positions) };
  distances.span = distances.high - distances.low;
  const ends = `${direction.signals[0].tls_id} → ${direction.signals[direction.signals.length - 1].tls_id}`;
  document.getElementById("time-space-note").textContent =
    `${direction.heading[0].toUpperCase()}${direction.heading.slice(1)}` +
    `${direction.street ? ` on ${direction.street}` : ""}, ${ends}: ` +
    `${num(direction.length_m, 0)} m in ${num(direction.travel_s, 0)} s at the speed limits ` +
    `(${num(direction.speed_mps * 3.6, 0)} km/h). Each bar is a signal at its distance, red with the ` +
    "route movement's green and yellow; the shaded bands are the departures that meet green at every signal.";
  for (const program of ["before", "after"]) {
    const node = document.getElementById(`time-space-${program}`);
    node.hidden = program === "before" && direction.signals.some((s) => s.before === null);
    if (!node.hidden) timeSpaceChart(node, answer, direction, program, distances);
  }
}

async function timeSpace() {
  const note = document.getElementById("time-space-note");
  let answer;
  try {
    answer = await api(`/api/plans/${encodeURIComponent(planId)}/time-space`);
  } catch (error) {
    note.textContent = `The time-space diagram cannot be drawn: ${error.message}`;
    return;
  }
  if (!answer.directions.length) {
    note.textContent = `No time-space diagram: ${answer.reason}.`;
    return;
  }
  const select = document.getElementById("time-space-direction");
  select.replaceChildren(
    ...answer.directions.map((d, i) =>
      el("option", { value: String(i) }, `${d.heading}: ${d.signals[0].tls_id} → ${d.signals[d.signals.length - 1].tls_id}`),
    ),
  );
  select.addEventListener("change", () => drawTimeSpace(answer, Number(select.value)));
  document.getElementById("time-space-controls").hidden = false;
  drawTimeSpace(answer, 0);
  if (answer.before_error) note.textContent += ` The programs running now cannot be read (${answer.before_error}).`;
}

//: the measures the signal-performance table shows, with their labels and how many decimals
const MEASURES = [
  ["percent_on_green", "Arrivals on green (%)", 1],
  ["percent_on_red", "Arrivals on red (%)", 1],
  ["platoon_ratio", "Platoon ratio", 2],
  ["split_failures", "Split failures", 0],
  ["green_occupancy_ratio", "Green occupancy ratio", 2],
  ["red_occupancy_ratio", "Red occupancy ratio (first 5 s)", 2],
  ["delay_per_vehicle_s", "Delay per vehicle (s)", 1],
  ["volume_vph", "Volume (veh/h)", 0],
  ["mean_green_s", "Mean green (s)", 1],
  ["mean_cycle_s", "Mean cycle (s)", 1],
];

function measureRows(phases) {
  // one row per measure, and per phase its before, after and change
  const numbers = measuredPhases(phases);
  return MEASURES.map(([key, label, digits]) => ({
    label,
    cells: numbers.flatMap((n) => {
      const m = phases[n][key] || {};
      return [num(m.before, digits), num(m.after, digits), m.change == null ? "–" : (m.change > 0 ? "+" : "") + num(m.change, digits)];
    }),
  }));
}

function measuredPhases(phases) {
  // the phases that saw vehicles in either period, in their order
  return Object.keys(phases)
    .filter((n) => phases[n].volume && (phases[n].volume.before || phases[n].volume.after))
    .sort((a, b) => Number(a) - Number(b));
}

function signalTable(signal) {
  const numbers = measuredPhases(signal.phases);
  const head = el("thead", {},
    el("tr", {}, el("th", {}, "Phase"), ...numbers.map((n) => el("th", { colSpan: 3 }, `Φ${n}`))),
    el("tr", {}, el("th", {}, ""), ...numbers.flatMap(() => [el("th", {}, "before"), el("th", {}, "after"), el("th", {}, "change")])),
  );
  const body = el("tbody", {}, ...measureRows(signal.phases).map((row) => el("tr", {}, el("th", {}, row.label), ...row.cells.map((c) => el("td", {}, c)))));
  return el("table", { className: "grid measures" }, head, body);
}

function pcdChart(node, panel, title) {
  // the Purdue Coordination Diagram: per cycle the green band (green start to yellow start, in
  // seconds from the start of red) and the yellow band to the cycle's end; each arrival a dot
  const cycles = panel.cycles;
  const x = cycles.start.map((t) => new Date(t));
  const band = (y, fillcolor, name, line = { width: 0 }) => ({ x, y, name, fillcolor, mode: "lines", fill: "tonexty", line: { shape: "hv", ...line } });
  const traces = [
    { x, y: cycles.green_s, mode: "lines", line: { shape: "hv", width: 0 }, showlegend: false, hoverinfo: "skip" },
    band(cycles.yellow_s, "rgba(44,160,44,0.35)", "green"),
    band(cycles.end_s, "rgba(242,194,0,0.35)", "yellow", { width: 0.8, color: KINDS["all-red"] }),
    { x: panel.arrivals.at.map((t) => new Date(t)), y: panel.arrivals.in_cycle_s, mode: "markers", marker: { size: 3, color: "black" }, name: "arrivals" },
  ];
  const share = panel.percent_on_green === null ? "—" : num(panel.percent_on_green);
  const layout = {
    title: { text: `${title}: ${panel.arrivals.at.length} arrivals, ${share} % on green`, font: { size: 13 } },
    yaxis: { title: { text: "time in cycle (s)" }, rangemode: "tozero" },
    margin: { t: 36, r: 10, b: 36, l: 50 },
    height: 260,
    showlegend: false,
  };
  Plotly.newPlot(node, traces, layout, PLOT_CONFIG);
}

function coordinationDiagrams(signal) {
  // the main street's first through phase, before and after the plan: the charts' places, and
  // what draws them once they are on the page (Plotly sizes a chart by its place)
  const measured = measuredPhases(signal.phases);
  const phase = measured.includes("2") ? "2" : measured[0] || "2";
  const sides = ["before", "after"];
  const charts = sides.map((side) => el("div", { className: "chart pcd-chart", dataset: { side } }));
  const draw = () =>
    Promise.all(
      sides.map(async (side, i) => {
        const minutes = (new Date(signal[side].end) - new Date(signal[side].start)) / 60000;
        const query = new URLSearchParams({ start: signal[side].start, minutes, phase });
        try {
          const answer = await api(`/api/signals/${encodeURIComponent(signal.controller_id)}/pcd?${query}`);
          pcdChart(charts[i], answer.phases[0], `Φ${phase} ${side}`);
        } catch (error) {
          charts[i].replaceChildren(el("p", { className: "note" }, `No coordination diagram ${side}: ${error.message}`));
        }
      }),
    );
  return { node: el("div", { className: "pcd-pair" }, ...charts), draw };
}

async function signalMeasures(plan) {
  const note = document.getElementById("signal-measures-note");
  const node = document.getElementById("signal-measures");
  if (!["applied", "rolled_back"].includes(plan.state)) {
    note.textContent = "Measured once the plan has been applied in the field.";
    return;
  }
  const answer = await api(`/api/plans/${encodeURIComponent(planId)}/signal-measures`);
  if (answer.reason) {
    note.textContent = `Not measured: ${answer.reason}.`;
    return;
  }
  note.textContent = "Per phase, the hour before the plan took effect and the hour after its transition (whole quarter hours); the lake measures what it holds so far.";
  const drawings = [];
  node.replaceChildren(
    ...answer.signals.map((signal) => {
      const title = el("h3", {}, `${signal.tls_id}` + (signal.before ? ` · before ${when(signal.before.start)}–${when(signal.before.end)}, after ${when(signal.after.start)}–${when(signal.after.end)}` : ""));
      if (!signal.phases) return el("div", { dataset: { signal: signal.tls_id } }, title, el("p", { className: "note" }, `Not measured: ${signal.reason}.`));
      const diagrams = coordinationDiagrams(signal);
      drawings.push(diagrams.draw);
      return el("div", { dataset: { signal: signal.tls_id } }, title, signalTable(signal), diagrams.node);
    }),
  );
  await Promise.all(drawings.map((draw) => draw()));
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

async function rollBack() {
  const reason = document.getElementById("rollback-reason").value.trim();
  if (!reason) {
    showError(new Error("Say why the plan is rolled back (the reason field)."));
    return;
  }
  const button = document.getElementById("rollback");
  button.disabled = true;
  try {
    await api(`/api/plans/${encodeURIComponent(planId)}/rollback`, { method: "POST", body: { reason } });
    document.getElementById("error").textContent = "";
    const note = document.getElementById("field-note");
    note.hidden = false;
    note.textContent = "Rollback requested: the field restores each signal's previous timing at its next cycle boundary; the plan shows rolled_back when the field confirms it.";
    document.body.dataset.rollback = "requested";
  } catch (error) {
    showError(error);
    button.disabled = false;
  }
}

function fieldOutcomes(plan) {
  const note = document.getElementById("field-note");
  const outcomes = Object.entries(plan.signal_outcomes || {});
  note.hidden = outcomes.length === 0;
  note.textContent = outcomes.length ? "In the field: " + outcomes.map(([tls, outcome]) => `${tls} ${outcome}`).join(", ") + "." : "";
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
  // an applied plan can be taken back by hand (the field restores what each signal ran before)
  document.getElementById("rollback-actions").hidden = !(decides(user) && plan.state === "applied" && canPost());
  fieldOutcomes(plan);
  if (!actions.hidden && !canPost()) {
    for (const button of actions.querySelectorAll("button")) button.disabled = true;
    showError(new Error("Log in again in this tab to approve or reject (the page has no CSRF token)."));
  }
  if (!decided) {
    kpiChart(plan);
    return Promise.all([phases(plan), timeSpace(), signalMeasures(plan)]);
  }
}

async function main() {
  user = await nav("plans");
  document.getElementById("approve").addEventListener("click", () => decide("approve"));
  document.getElementById("reject").addEventListener("click", () => decide("reject"));
  document.getElementById("rollback").addEventListener("click", rollBack);
  const plan = await api(`/api/plans/${encodeURIComponent(planId)}`);
  await render(plan);
  document.body.dataset.ready = "true";
}

main().catch(showError);
