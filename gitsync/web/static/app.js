/* gitsync web UI: the theme, the menu, the API token, the action buttons and the live logs. Hand-written, no build.
   Loaded in <head> (the theme is set before the page is drawn); the rest waits for the document.
   Nothing here writes HTML from data: text goes in with textContent; fragments the server rendered (escaped) are
   parsed with DOMParser. Every page works without it (forms are plain forms; the logs are listed as rendered). */
(function () {
  "use strict";
  var root = document.documentElement;
  var THEME_KEY = "gitsync-theme";
  var TOKEN_KEY = "gitsync-token";
  var LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, WARNING: 3, ERROR: 4 };

  root.classList.add("js");
  try {
    var saved = window.localStorage.getItem(THEME_KEY);
    if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  } catch (e) { /* storage refused: the system's theme */ }

  function currentTheme() {
    if (root.dataset.theme === "light" || root.dataset.theme === "dark") return root.dataset.theme;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setupTheme() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var show = function () { button.setAttribute("aria-pressed", currentTheme() === "dark" ? "true" : "false"); };
    show();
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { window.localStorage.setItem(THEME_KEY, next); } catch (e) { /* kept for this page only */ }
      show();
    });
  }

  function setupMenu() {
    var button = document.getElementById("menu-toggle");
    var nav = document.getElementById("site-nav");
    if (!button || !nav) return;
    button.addEventListener("click", function () {
      var open = !nav.classList.contains("open");
      nav.classList.toggle("open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  /* -- the API token: asked once, kept for the tab (sessionStorage) ----------------------------------------- */

  function storedToken() {
    try { return window.sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function storeToken(token) {
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token); else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* not kept */ }
  }

  function askToken(reason) {
    var dialog = document.getElementById("token-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.prompt(reason || "API token") || "");
    }
    var input = document.getElementById("token-input");
    var why = document.getElementById("token-reason");
    if (why) why.textContent = reason || "";
    input.value = "";
    return new Promise(function (resolve) {
      var done = function () {
        dialog.removeEventListener("close", done);
        resolve(dialog.returnValue === "save" ? input.value.trim() : "");
      };
      dialog.addEventListener("close", done);
      dialog.showModal();
      input.focus();
    });
  }

  function token() {
    var known = storedToken();
    if (known) return Promise.resolve(known);
    return askToken("This action needs the API token (the environment variable the daemon's http.token_env names).")
      .then(function (given) { storeToken(given); return given; });
  }

  function say(text, isError) {
    var status = document.getElementById("action-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", !!isError);
    status.hidden = !text;
  }

  function problemText(response) {
    return response.text().then(function (body) {
      try {
        var data = JSON.parse(body);
        return data.detail || data.title || body;
      } catch (e) { return body || response.statusText; }
    });
  }

  /* a button with data-api="<url>" posts there (data-body: the JSON body) with the token */
  function post(url, body, retried) {
    return token().then(function (given) {
      if (!given) throw new Error("no API token given: nothing was sent");
      return fetch(url, {
        method: "POST",
        headers: { "Authorization": "Bearer " + given, "Content-Type": "application/json", "Accept": "application/json" },
        body: body || "{}",
        credentials: "same-origin"
      });
    }).then(function (response) {
      if (response.status === 401 && !retried) {
        storeToken("");
        return post(url, body, true);
      }
      return response;
    });
  }

  function act(button) {
    var label = button.getAttribute("aria-label") || button.textContent.trim();
    button.disabled = true;
    say(label + ": sending\u2026");
    post(button.dataset.api, button.dataset.body).then(function (response) {
      if (!response.ok) {
        return problemText(response).then(function (text) { throw new Error(text); });
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        say(label + ": done" + (data && data.state ? " (" + data.state + ")" : "") + ".");
        if (button.dataset.then === "reload") window.location.reload();
        else if (button.dataset.then === "open" && data && data.id) {
          window.location.assign("/executions/" + encodeURIComponent(data.id));
        } else refreshFragment();
      });
    }).catch(function (error) {
      say(label + " failed: " + error.message, true);
    }).then(function () { button.disabled = false; });
  }

  function setupActions() {
    /* delegated: the buttons of a fragment fetched later work too */
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button[data-api]") : null;
      if (button && !button.disabled) act(button);
    });
    var forget = document.getElementById("forget-token");
    if (forget) forget.addEventListener("click", function () { storeToken(""); say("The API token is forgotten."); });
  }

  /* the Run form takes the token in a field: filled from this tab's token, and kept when typed */
  function setupRunForm() {
    var form = document.getElementById("run-form");
    if (!form) return;
    var field = form.querySelector("input[name=_token]");
    if (!field) return;
    if (!field.value && storedToken()) field.value = storedToken();
    form.addEventListener("submit", function () { if (field.value) storeToken(field.value.trim()); });
  }

  /* -- the execution page: live logs, and the task runs refreshed on each state change ------------------------ */

  function refreshFragment() {
    var fragment = document.getElementById("live-fragment");
    if (!fragment || !fragment.dataset.src) return Promise.resolve();
    return fetch(fragment.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var fresh = parsed.getElementById("live-fragment");
        if (fresh) fragment.replaceWith(document.adoptNode(fresh));
      }).catch(function () { /* the next state change tries again */ });
  }

  function logFilter() {
    var level = document.getElementById("log-level");
    var search = document.getElementById("log-search");
    var min = level && level.value ? LEVELS[level.value.toUpperCase()] : -1;
    var needle = search ? search.value.trim().toLowerCase() : "";
    return function (row) {
      var rank = LEVELS[(row.dataset.level || "").toUpperCase()];
      var shown = (min < 0 || rank === undefined || rank >= min) &&
        (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0);
      row.hidden = !shown;
      return shown;
    };
  }

  function applyFilter(table) {
    var keep = logFilter();
    var shown = 0;
    table.querySelectorAll("tbody tr[data-level]").forEach(function (row) { if (keep(row)) shown += 1; });
    var count = document.getElementById("log-count");
    if (count) count.textContent = shown + " line" + (shown === 1 ? "" : "s") + " shown";
  }

  function taskOf(taskRunId) {
    if (!taskRunId) return "";
    var row = document.querySelector('[data-task-run="' + window.CSS.escape(taskRunId) + '"]');
    return row && row.dataset.taskId ? row.dataset.taskId : taskRunId.slice(0, 8);
  }

  function appendLog(table, line) {
    var body = table.tBodies[0];
    var empty = document.getElementById("logs-empty");
    if (empty) empty.remove();
    var row = document.createElement("tr");
    var level = String(line.level || "INFO").toUpperCase();
    row.dataset.level = level;
    row.dataset.id = String(line.id);
    row.className = "level-" + level.toLowerCase();
    [String(line.at || ""), level, line.task_id || taskOf(line.task_run_id), String(line.message || "")].forEach(function (text, i) {
      var cell = document.createElement("td");
      cell.className = ["nowrap", "level", "nowrap", "message"][i];
      cell.textContent = text;
      row.appendChild(cell);
    });
    body.appendChild(row);
    table.dataset.after = String(line.id);
    logFilter()(row);
  }

  function setState(state) {
    var badge = document.getElementById("execution-state");
    if (!badge || !state) return;
    badge.textContent = state;
  }

  function handleEvent(table, live, name, data, close) {
    if (name === "log") {
      try { appendLog(table, JSON.parse(data)); } catch (e) { /* a line that is not JSON is skipped */ }
      applyFilter(table);
    } else if (name === "state") {
      try { setState(JSON.parse(data).state); } catch (e) { /* ignored */ }
      refreshFragment();
    } else if (name === "end") {
      close();
      table.dataset.ended = "true";
      if (live) live.textContent = "The execution ended; every line is shown.";
      refreshFragment();
    }
  }

  /* EventSource cannot send the token, which reads need off loopback: the same stream read with fetch, with it */
  function streamWithToken(table, live) {
    var controller = new AbortController();
    var close = function () { controller.abort(); };
    token().then(function (given) {
      var url = table.dataset.stream + "?after=" + encodeURIComponent(table.dataset.after || "0");
      return fetch(url, { headers: { "Authorization": "Bearer " + given, "Accept": "text/event-stream" }, signal: controller.signal });
    }).then(function (response) {
      if (!response.ok || !response.body) throw new Error("the live logs answered " + response.status);
      if (live) live.textContent = "Live: new lines appear as they are written.";
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var pump = function () {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true });
          var at;
          while ((at = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            var name = "message";
            var data = [];
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) name = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
            });
            if (data.length) handleEvent(table, live, name, data.join("\n"), close);
          }
          return pump();
        });
      };
      return pump();
    }).catch(function (error) {
      if (live && table.dataset.ended !== "true") live.textContent = "The live logs stopped: " + error.message + ". Reload the page to see new lines.";
    });
  }

  function setupLogs() {
    var table = document.getElementById("logs");
    if (!table) return;
    ["log-level", "log-search"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) input.addEventListener("input", function () { applyFilter(table); });
    });
    var form = document.getElementById("log-filter");
    if (form) form.addEventListener("submit", function (event) { event.preventDefault(); applyFilter(table); });
    applyFilter(table);
    var live = document.getElementById("live-status");
    if (!table.dataset.stream || table.dataset.ended === "true" || typeof window.EventSource !== "function") return;
    var opened = false;
    var source = new window.EventSource(table.dataset.stream + "?after=" + encodeURIComponent(table.dataset.after || "0"));
    var close = function () { source.close(); };
    if (live) live.textContent = "Connecting to the live logs\u2026";
    source.addEventListener("open", function () {
      opened = true;
      if (live) live.textContent = "Live: new lines appear as they are written.";
    });
    ["log", "state", "end"].forEach(function (name) {
      source.addEventListener(name, function (event) { handleEvent(table, live, name, event.data, close); });
    });
    source.addEventListener("error", function () {
      if (source.readyState === window.EventSource.CLOSED && !opened && table.dataset.ended !== "true") {
        streamWithToken(table, live);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTheme();
    setupMenu();
    setupActions();
    setupRunForm();
    setupLogs();
  });
})();
