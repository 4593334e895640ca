// The kiosk page: one screen at a time, state read from /api/state once a second.
(function () {
  "use strict";

  const MESSAGES = {
    denied: ["Sign-in declined", "The request was denied on your phone. Nothing was shared with this kiosk."],
    expired: ["Time ran out", "The request expired before it was approved. Please try again."],
    unknown_user: ["Member not found", null],
    error: ["Something went wrong", null],
  };
  const IDLE_SIGN_OUT_MS = 120000;

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let idleTimer = null;
  let shown = null;

  function show(name) {
    if (shown === name) return;
    shown = name;
    document.body.dataset.state = name;
    for (const section of document.querySelectorAll(".screen")) {
      section.hidden = section.dataset.screen !== name;
    }
    const focus = { start: "login-hint", waiting: "cancel-button", welcome: "done-button",
                    message: "again-button" }[name];
    if (focus) $(focus).focus();
  }

  function formatTime(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function formatDue(iso) {
    const date = new Date(iso + "T12:00:00");
    return isNaN(date) ? iso : date.toLocaleDateString(undefined,
      { weekday: "short", day: "numeric", month: "short" });
  }

  function render(state) {
    clearTimeout(idleTimer);
    switch (state.state) {
      case "start":
        stopPolling();
        $("start-message").textContent = state.message || "";
        show("start");
        break;
      case "starting":
      case "waiting":
        $("binding-message").textContent = state.binding_message || "…";
        $("countdown").textContent = formatTime(state.remaining || 0);
        if (state.expires_in) {
          $("progress-bar").style.width = (100 * state.remaining / state.expires_in) + "%";
        }
        // The provider says whether the request reached a phone; the kiosk's server words it
        // (kiosk.py waiting_words).
        if (state.title) $("waiting-title").textContent = state.title;
        if (state.lead) $("waiting-lead").textContent = state.lead;
        $("waiting-help").textContent = state.help || "";
        $("waiting-help").hidden = !state.help;
        show("waiting");
        startPolling();
        break;
      case "welcome": {
        stopPolling();
        $("welcome-title").textContent = "Welcome, " + state.name;
        $("welcome-message").textContent = state.message || "";
        const list = $("loans");
        list.replaceChildren();
        const loans = state.loans || [];
        $("loans-heading").textContent = loans.length ? "Your loans" : "You have no loans";
        for (const loan of loans) {
          const item = document.createElement("li");
          const title = document.createElement("span");
          title.className = "title";
          title.textContent = loan.title;
          const author = document.createElement("span");
          author.className = "author";
          author.textContent = loan.author;
          const due = document.createElement("span");
          due.className = "due";
          due.textContent = "Due " + formatDue(loan.due);
          item.append(title, author, due);
          list.append(item);
        }
        show("welcome");
        idleTimer = setTimeout(() => post("/api/done"), IDLE_SIGN_OUT_MS);
        break;
      }
      case "cancelled":
        post("/api/done");
        break;
      default: {
        stopPolling();
        const [title, text] = MESSAGES[state.state] || MESSAGES.error;
        $("message-title").textContent = title;
        $("message-text").textContent = text || state.message || "Please try again.";
        document.body.dataset.outcome = state.state;
        show("message");
      }
    }
  }

  async function call(method, path, body) {
    const options = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    return response.json();
  }

  async function post(path, body) {
    try {
      render(await call("POST", path, body === undefined ? {} : body));
    } catch (err) {
      render({ state: "error", message: "The kiosk could not reach its server." });
    }
  }

  async function refresh() {
    try {
      render(await call("GET", "/api/state"));
    } catch (err) {
      /* a missed tick; try again on the next one */
    }
  }

  function startPolling() {
    if (!timer) timer = setInterval(refresh, 1000);
  }

  function stopPolling() {
    clearInterval(timer);
    timer = null;
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const hint = $("login-hint").value.trim();
    if (!hint) return;
    $("login-button").disabled = true;
    post("/api/login", { login_hint: hint }).finally(() => { $("login-button").disabled = false; });
  });
  $("cancel-button").addEventListener("click", () => post("/api/cancel"));
  $("done-button").addEventListener("click", () => { $("login-hint").value = ""; post("/api/done"); });
  $("again-button").addEventListener("click", () => post("/api/done"));

  refresh();
})();
