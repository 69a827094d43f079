// Detector health of one day from the lake: a count per status, each detector's availability and
// usable share as a chart (bars coloured by status) and a table, worst first; a day picker and a
// status filter, kept in the address so a reload or a shared link shows the same.
import { api, el, nav, num, showError, when } from "/static/common.js";

const STATUS_COLOURS = { down: "#b00020", degraded: "#f2a900", ok: "#17803d" };
const OTHER_COLOUR = "#5b6675";
const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

const daySelect = document.getElementById("day");
const statusSelect = document.getElementById("status");

function percent(share) {
  return share === null || share === undefined ? "—" : `${num(100 * share)} %`;
}

function daysPicker(answer) {
  // newest first; a day asked for that the lake lacks stays selectable, so the page says why it is empty
  const days = answer.days.slice().reverse();
  if (answer.day && !days.includes(answer.day)) days.unshift(answer.day);
  daySelect.replaceChildren(...days.map((day) => el("option", { value: day }, day)));
  daySelect.value = answer.day || "";
  daySelect.disabled = days.length === 0;
}

function summary(answer) {
  const total = Object.values(answer.counts).reduce((a, b) => a + b, 0);
  const items = Object.entries(answer.counts).map(([status, count]) =>
    el("li", { className: `state ${status}`, dataset: { status } }, `${status}: ${count}`),
  );
  items.push(el("li", { className: "state" }, `detectors: ${total}`));
  document.getElementById("summary").replaceChildren(...items);
  const reason = document.getElementById("reason");
  reason.textContent = answer.reason || "";
  reason.hidden = !answer.reason;
}

// One bar per detector (its availability), coloured by status, one trace per status for the
// legend; usable share as a marker on it. The x axis keeps the answer's order: worst first.
function chart(detectors) {
  const order = detectors.map((d) => d.detector_id);
  const statuses = [...new Set(detectors.map((d) => d.status))];
  const hover = (d) =>
    `${d.detector_id} (${d.status})<br>intersection ${d.intersection_id}, lane ${d.lane_id}` +
    `<br>availability ${percent(d.availability)}, usable ${percent(d.usable_share)}`;
  const bars = statuses.map((status) => {
    const group = detectors.filter((d) => d.status === status);
    return {
      type: "bar",
      name: `${status}: availability`,
      x: group.map((d) => d.detector_id),
      y: group.map((d) => 100 * d.availability),
      marker: { color: STATUS_COLOURS[status] || OTHER_COLOUR },
      hovertext: group.map(hover),
      hoverinfo: "text",
    };
  });
  const usable = {
    type: "scatter",
    mode: "markers",
    name: "usable share",
    x: order,
    y: detectors.map((d) => 100 * d.usable_share),
    marker: { symbol: "diamond", size: 8, color: "#1d2430" },
    hovertext: detectors.map(hover),
    hoverinfo: "text",
  };
  Plotly.react(
    "chart",
    detectors.length ? [...bars, usable] : [],
    {
      height: 340,
      margin: { t: 20, r: 20, b: 90, l: 60 },
      barmode: "overlay",
      xaxis: { type: "category", categoryorder: "array", categoryarray: order, automargin: true },
      yaxis: { title: { text: "% of the day" }, range: [0, 105] },
      legend: { orientation: "h", y: 1.12 },
    },
    PLOT_CONFIG,
  );
}

function table(detectors) {
  const cell = (text) => el("td", {}, String(text));
  const figure = (text) => el("td", { className: "num" }, String(text));
  document.querySelector("#detectors tbody").replaceChildren(
    ...detectors.map((d) =>
      el("tr", { dataset: { detector: d.detector_id, status: d.status } },
        el("td", {}, el("span", { className: `state ${d.status}` }, d.status)),
        cell(d.detector_id), cell(d.intersection_id), cell(d.lane_id), cell(d.edge_id || "—"),
        figure(percent(d.availability)), figure(percent(d.usable_share)),
        figure(`${d.received_intervals} / ${d.expected_intervals}`), figure(d.duplicates), figure(d.late_intervals),
        figure(d.stuck_intervals), figure(d.zero_intervals), figure(d.implausible_intervals),
        figure(when(d.last_seen))),
    ),
  );
}

async function load(day, status) {
  const params = new URLSearchParams();
  if (day) params.set("day", day);
  if (status) params.set("status", status);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  const answer = await api(`/api/detectors${query ? `?${query}` : ""}`);
  document.getElementById("error").textContent = "";
  daysPicker(answer);
  summary(answer);
  chart(answer.detectors);
  table(answer.detectors);
  document.body.dataset.detectors = String(answer.detectors.length);
}

async function main() {
  await nav("detectors");
  const asked = new URLSearchParams(location.search);
  statusSelect.value = asked.get("status") || "";
  const reload = () => load(daySelect.value, statusSelect.value).catch(showError);
  daySelect.addEventListener("change", reload);
  statusSelect.addEventListener("change", reload);
  await load(asked.get("day"), statusSelect.value);
  document.body.dataset.ready = "true";
}

main().catch(showError);
