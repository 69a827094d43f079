// What every page shares: the API client (session cookie + CSRF header), the nav, formatting.
const CSRF_KEY = "citybrain.csrf";

export function loginUrl() {
  return "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

// fetch on the JSON API; a 401 (no session, or it ended) goes to the login page.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    const token = sessionStorage.getItem(CSRF_KEY);
    if (token) headers["X-CSRF-Token"] = token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const answer = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status === 401) {
    location.assign(loginUrl());
    throw new Error("not logged in");
  }
  const data = answer.status === 204 ? null : await answer.json().catch(() => null);
  if (!answer.ok) {
    const detail = data && data.detail;
    const message = typeof detail === "string" ? detail : detail && detail.message ? detail.message : JSON.stringify(detail);
    throw new Error(`${answer.status}: ${message || answer.statusText}`);
  }
  return data;
}

export function rememberCsrf(token) {
  sessionStorage.setItem(CSRF_KEY, token);
}

export function canPost() {
  return Boolean(sessionStorage.getItem(CSRF_KEY));
}

export function decides(user) {
  return user.role === "operator" || user.role === "admin";
}

// The nav bar at the top of every page; answers the logged-in user.
export async function nav(current) {
  const user = await api("/api/me");
  const links = [
    ["/", "Network map", "map"],
    ["/plans", "Recommendations", "plans"],
    ["/detectors", "Detector health", "detectors"],
  ];
  if (decides(user)) links.push(["/audit", "Audit log", "audit"]);
  const bar = document.createElement("nav");
  bar.className = "nav";
  const brand = el("span", { className: "brand" }, "citybrain");
  bar.append(brand);
  for (const [href, label, key] of links) {
    const link = el("a", { href, className: key === current ? "current" : "" }, label);
    bar.append(link);
  }
  const who = el("span", { className: "who", id: "who" }, `${user.name} (${user.role})`);
  const out = el("button", { type: "button", id: "logout" }, "Log out");
  out.addEventListener("click", async () => {
    try {
      await api("/api/logout", { method: "POST" });
    } finally {
      sessionStorage.removeItem(CSRF_KEY);
      location.assign("/login");
    }
  });
  bar.append(who, out);
  document.body.prepend(bar);
  return user;
}

// A DOM element with properties and children (strings become text: nothing is parsed as HTML).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function num(value, digits = 1) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

// Predicted change of each KPI of an evaluation: plan mean minus baseline mean, in % too, with
// both 95 % confidence intervals.
export function kpiChanges(evaluation) {
  const baseline = (evaluation && evaluation.baseline) || {};
  const plan = (evaluation && evaluation.plan) || {};
  return Object.keys(plan)
    .filter((name) => name in baseline)
    .sort()
    .map((name) => {
      const before = baseline[name];
      const after = plan[name];
      const change = after.mean - before.mean;
      const percent = before.mean ? (100 * change) / before.mean : null;
      return { name, before, after, change, percent };
    });
}

export function ci(estimate) {
  return `${num(estimate.mean)} [${num(estimate.ci95[0])}, ${num(estimate.ci95[1])}]`;
}

export function showError(error) {
  const box = document.getElementById("error") || document.body.appendChild(el("p", { id: "error" }));
  box.className = "error";
  box.textContent = String(error.message || error);
}
