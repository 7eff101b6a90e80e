"use strict";
// The login form: POSTs the fields as JSON; the session cookie comes back HttpOnly.
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = document.getElementById("error");
  const button = document.getElementById("submit");
  err.textContent = "";
  button.disabled = true;
  try {
    const r = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        user: document.getElementById("user").value,
        password: document.getElementById("password").value,
      }),
    });
    if (r.ok) {
      location.assign("/");
      return;
    }
    const body = await r.json().catch(() => ({}));
    err.textContent = body.error || ("login failed: " + r.status);
  } catch (x) {
    err.textContent = "cannot reach clutch: " + x;
  } finally {
    button.disabled = false;
  }
});
