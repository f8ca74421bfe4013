"use strict";
// Checks the token against the API before opening the dashboard, so a wrong one is said here.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  const problem = document.getElementById("login-error");
  const response = await fetch("/api/state", { headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) {
    location.href = `/?token=${encodeURIComponent(token)}`;
  } else {
    problem.textContent = response.status === 401
      ? "The Manager refused this token. Use the token it printed (or the one in CHIMERAPY_TOKEN)."
      : `The Manager answered ${response.status} ${response.statusText}.`;
    problem.hidden = false;
  }
});
