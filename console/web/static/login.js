import { rememberCsrf } from "/static/common.js";

const form = document.getElementById("login");
const message = document.getElementById("error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  const body = { name: form.elements.name.value, password: form.elements.password.value };
  const answer = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    message.textContent = typeof data.detail === "string" ? data.detail : `login failed (${answer.status})`;
    return;
  }
  rememberCsrf(data.csrf_token);
  const next = new URLSearchParams(location.search).get("next");
  // only a path on this site: never an address elsewhere
  location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
});
