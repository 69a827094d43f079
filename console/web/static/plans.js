// Recommendations: every plan with its method, signals, window, predicted KPI changes and state,
// updated live from the server's events (a new proposal appears without a reload).
import { api, ci, el, kpiChanges, nav, num, showError, when } from "/static/common.js";

const body = document.querySelector("#plans tbody");
const select = document.getElementById("state");

function changeCell(evaluation) {
  const cell = el("td");
  for (const kpi of kpiChanges(evaluation)) {
    const sign = kpi.change > 0 ? "+" : "";
    const percent = kpi.percent === null ? "" : ` (${sign}${num(kpi.percent)} %)`;
    // lower delay, travel time and stops are better: a fall is shown as better
    const tone = kpi.change < 0 ? "better" : kpi.change > 0 ? "worse" : "";
    cell.append(
      el("div", {},
        el("b", {}, kpi.name), ": ",
        el("span", { className: tone }, `${sign}${num(kpi.change)}${percent}`),
        el("span", { className: "note" }, ` — ${ci(kpi.after)} vs ${ci(kpi.before)}`)),
    );
  }
  return cell;
}

function row(plan) {
  const link = el("a", { href: `/plans/${encodeURIComponent(plan.plan_id)}` }, plan.plan_id);
  const evaluation = plan.evaluation || {};
  return el("tr", { dataset: { plan: plan.plan_id } },
    el("td", {}, link, el("div", { className: "note" }, plan.scenario || "")),
    el("td", {}, plan.method),
    el("td", {}, plan.signals.join(", ")),
    el("td", {}, when(plan.valid_from), el("br"), "to ", when(plan.valid_to)),
    changeCell(evaluation),
    el("td", {}, (evaluation.seeds || []).join(", ")),
    el("td", {}, el("span", { className: `state ${plan.state}` }, plan.state)),
  );
}

async function refresh() {
  const state = select.value;
  const plans = await api("/api/plans" + (state ? `?state=${state}` : ""));
  body.replaceChildren(...plans.map(row));
  document.getElementById("empty").hidden = plans.length > 0;
  document.body.dataset.plans = String(plans.length);
}

function live() {
  const status = document.getElementById("live");
  const source = new EventSource("/api/events");
  let pending = null;
  source.addEventListener("open", () => (status.textContent = "live updates: on"));
  source.addEventListener("error", () => (status.textContent = "live updates: reconnecting…"));
  source.addEventListener("plan", () => {
    // a burst of changes becomes one reload
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(showError), 200);
  });
  source.addEventListener("end", () => {
    source.close();
    status.textContent = "live updates: session ended";
  });
}

async function main() {
  await nav("plans");
  const wanted = new URLSearchParams(location.search).get("state");
  if (wanted) select.value = wanted;
  select.addEventListener("change", () => refresh().catch(showError));
  await refresh();
  live();
}

main().catch(showError);
