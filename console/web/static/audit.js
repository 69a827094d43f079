// The audit log, newest first, filtered by action or actor, paged by "older".
import { api, el, nav, showError, when } from "/static/common.js";

const body = document.querySelector("#audit tbody");
const older = document.getElementById("older");
const PAGE = 100;
let oldest = null;

async function load(append) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const key of ["action", "actor"]) {
    const value = document.getElementById(key).value.trim();
    if (value) params.set(key, value);
  }
  if (append && oldest !== null) params.set("before", String(oldest));
  const entries = await api(`/api/audit?${params}`);
  const rows = entries.map((e) =>
    el("tr", {},
      el("td", {}, String(e.audit_id)), el("td", {}, when(e.at)), el("td", {}, e.actor), el("td", {}, e.action),
      el("td", {}, e.target || ""), el("td", {}, e.address || ""),
      el("td", { className: "detail" }, Object.keys(e.detail).length ? JSON.stringify(e.detail) : "")),
  );
  if (append) body.append(...rows);
  else body.replaceChildren(...rows);
  if (entries.length) oldest = entries[entries.length - 1].audit_id;
  older.hidden = entries.length < PAGE;
  document.body.dataset.entries = String(body.children.length);
}

async function main() {
  const user = await nav("audit");
  if (user.role === "viewer") {
    showError(new Error("The audit log is for operators and admins."));
    return;
  }
  document.getElementById("filter").addEventListener("click", () => {
    oldest = null;
    load(false).catch(showError);
  });
  older.addEventListener("click", () => load(true).catch(showError));
  await load(false);
}

main().catch(showError);
