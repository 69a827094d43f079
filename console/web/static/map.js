// The network map: edges coloured by level of service (from gold's fused speed), signals and
// active incidents marked, a slider over the quarter hours gold holds. No tiles: the network is
// drawn on a blank background, so the page works offline.
import { api, el, nav, num, showError, when } from "/static/common.js";

const LOS_COLOURS = { A: "#1a9850", B: "#66bd63", C: "#d9ef8b", D: "#fee08b", E: "#f46d43", F: "#a50026" };
const NO_DATA = "#9aa3ad";
// Approach delay (s/veh) bands, the HCM's signalised-intersection LOS delay limits (10/20/35/55/80 s)
// used as a colour scale: the figure is segment delay from fused speeds, not the HCM's control delay.
const DELAY_BANDS = [[10, LOS_COLOURS.A], [20, LOS_COLOURS.B], [35, LOS_COLOURS.C], [55, LOS_COLOURS.D], [80, LOS_COLOURS.E]];

function delayColour(delay) {
  if (delay === null || delay === undefined) return "#ffffff";
  for (const [upTo, colour] of DELAY_BANDS) if (delay <= upTo) return colour;
  return LOS_COLOURS.F;
}

function signalText(p) {
  return [
    `<b>signal ${escape(p.id)}</b> (${escape(p.intersection_id)})`,
    p.approach_delay_s === null
      ? "approach delay: no fused speed on its approaches"
      : `approach delay: ${num(p.approach_delay_s)} s/veh over ${p.approaches} approaches, ${num(p.approach_flow_vph, 0)} veh/h`,
  ].join("<br>");
}

const map = L.map("map", { preferCanvas: true, attributionControl: false, zoomSnap: 0.25 });
const layers = L.layerGroup().addTo(map);
let fitted = false;
let slots = [];

function edgeStyle(feature) {
  const los = feature.properties.los;
  return { color: los ? LOS_COLOURS[los] : NO_DATA, weight: 2 + Math.min(feature.properties.lanes || 1, 4), opacity: 0.9 };
}

function edgeText(p) {
  return [
    `<b>${escape(p.id)}</b>${p.name ? " " + escape(p.name) : ""}`,
    `level of service: ${p.los || "no data"}`,
    `fused speed: ${num(p.speed_mps)} m/s of ${num(p.speed_limit_mps)} m/s limit`,
    `flow: ${num(p.flow_vph, 0)} veh/h · confidence ${num(p.confidence, 2)}`,
    p.incident_ids.length ? `incidents: ${p.incident_ids.map(escape).join(", ")}` : "",
  ].filter(Boolean).join("<br>");
}

function escape(text) {
  const span = document.createElement("span");
  span.textContent = String(text);
  return span.innerHTML;
}

function draw(collection) {
  layers.clearLayers();
  const byLayer = { edges: [], signals: [], incidents: [] };
  for (const feature of collection.features) byLayer[feature.properties.layer].push(feature);
  const edges = L.geoJSON(byLayer.edges, {
    style: edgeStyle,
    onEachFeature: (feature, layer) => layer.bindTooltip(edgeText(feature.properties), { sticky: true }),
  }).addTo(layers);
  L.geoJSON(byLayer.signals, {
    pointToLayer: (feature, latlng) =>
      L.circleMarker(latlng, {
        radius: 6,
        color: "#1d2430",
        weight: 1.5,
        fillColor: delayColour(feature.properties.approach_delay_s),
        fillOpacity: 1,
      }).bindTooltip(signalText(feature.properties)),
  }).addTo(layers);
  L.geoJSON(byLayer.incidents, {
    pointToLayer: (feature, latlng) =>
      L.circleMarker(latlng, { radius: 9, color: "#b00020", weight: 3, fillColor: "#ffcc00", fillOpacity: 0.9 })
        .bindTooltip(
          `incident ${escape(feature.properties.id)}: ${escape(feature.properties.kind)}, ` +
            `${escape(feature.properties.severity)} (${escape(feature.properties.status)})` +
            (feature.properties.description ? `<br>${escape(feature.properties.description)}` : ""),
        ),
  }).addTo(layers);
  if (!fitted && byLayer.edges.length) {
    map.fitBounds(edges.getBounds(), { padding: [10, 10] });
    fitted = true;
  }
  const known = byLayer.edges.filter((f) => f.properties.los).length;
  document.getElementById("network").textContent = collection.network;
  document.getElementById("slot-label").textContent = collection.slot ? when(collection.slot) : "no lake data";
  document.getElementById("summary").textContent =
    `${byLayer.edges.length} edges (${known} with a fused speed), ${byLayer.signals.length} signals, ` +
    `${byLayer.incidents.length} active incident${byLayer.incidents.length === 1 ? "" : "s"}` +
    (collection.slot ? ` in the quarter hour from ${when(collection.slot)}.` : "; the lake has no link state yet.");
  document.body.dataset.edges = String(byLayer.edges.length);
}

function legend() {
  const control = L.control({ position: "bottomright" });
  control.onAdd = () => {
    const box = el("div", { className: "legend" }, el("b", {}, "Level of service"), el("br"));
    for (const [letter, colour] of [...Object.entries(LOS_COLOURS), ["no data", NO_DATA]]) {
      const swatch = el("i");
      swatch.style.background = colour;
      box.append(swatch, letter, el("br"));
    }
    box.append(el("b", {}, "Signal approach delay"), el("br"));
    let from = 0;
    for (const [upTo, colour] of [...DELAY_BANDS, [null, LOS_COLOURS.F], [undefined, "#ffffff"]]) {
      const dot = el("i", { className: "dot" });
      dot.style.background = colour;
      const label = upTo === undefined ? "no data" : upTo === null ? `> ${from} s` : `${from}–${upTo} s`;
      box.append(dot, label, el("br"));
      if (upTo) from = upTo;
    }
    return box;
  };
  control.addTo(map);
}

async function load(at) {
  const collection = await api("/api/network" + (at ? `?at=${encodeURIComponent(at)}` : ""));
  if (!at) {
    slots = collection.slots;
    const slider = document.getElementById("slot");
    slider.max = String(Math.max(slots.length - 1, 0));
    slider.value = String(Math.max(slots.indexOf(collection.slot), 0));
    slider.disabled = slots.length < 2;
  }
  draw(collection);
}

async function main() {
  await nav("map");
  legend();
  map.setView([0, 0], 2);
  const slider = document.getElementById("slot");
  slider.addEventListener("input", () => {
    document.getElementById("slot-label").textContent = when(slots[Number(slider.value)]);
  });
  slider.addEventListener("change", () => load(slots[Number(slider.value)]).catch(showError));
  await load(null);
}

main().catch(showError);
