"use strict";
// Signs in with a POST (the token never enters a URL), so a wrong token is said here.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  const problem = document.getElementById("login-error");
  const response = await fetch("/login", { method: "POST", body: new URLSearchParams({ token }) });
  if (response.ok) {
    location.href = "/";
  } else {
    problem.textContent = response.status === 401
      ? "The Manager refused this token. Use the one in its token file (or in CHIMERAPY_TOKEN)."
      : `The Manager answered ${response.status} ${response.statusText}.`;
    problem.hidden = false;
  }
});
