// Live figures from server-sent events, a pause control, and the action buttons. Plain JavaScript, no library.
(function () {
  "use strict";
  var body = document.body;
  var url = body.dataset.live;
  var status = document.getElementById("live-status");
  var toggle = document.getElementById("live-toggle");
  var source = null;
  var snapshots = 0;

  function hours(h) { return h >= 0.1 ? h.toFixed(2) + " h" : Math.round(h * 3600) + " s"; }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
  }
  function setField(name, text) {
    document.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }
  function setBar(name, share) {
    var pct = Math.round(Math.min(1, Math.max(0, share)) * 1000) / 10;
    document.querySelectorAll('.bar[data-field="' + name + '"]').forEach(function (el) {
      el.setAttribute("aria-valuenow", String(pct));
      el.querySelector("span").style.width = pct + "%";
      el.querySelector("em").textContent = pct + "%";
    });
  }
  function apply(o) {
    snapshots += 1;
    body.dataset.snapshots = String(snapshots);
    setBar("progress", o.progress);
    setField("done", hours(o.audio_h_done));
    setField("total", hours(o.audio_h_total));
    setField("left", hours(Math.max(0, o.audio_h_total - o.audio_h_done)));
    setField("throughput", o.throughput_h_per_h.toFixed(2));
    setField("eta", o.eta_s == null ? "—" : duration(o.eta_s));
    o.counts.jobs.forEach(function (t) {
      document.querySelectorAll('[data-job-state="' + t.state + '"]').forEach(function (el) { el.textContent = t.count; });
    });
    o.counts.scenes.forEach(function (t) {
      document.querySelectorAll('[data-scene-state="' + t.state + '"]').forEach(function (el) { el.textContent = t.count; });
    });
    if (status) status.textContent = "live · updated " + new Date().toLocaleTimeString();
  }
  function plural(n, one, many) { return n === 1 ? "1 " + one : n + " " + many; }
  function applyBatches(list) {
    list.forEach(function (b) {
      var p = b.progress, key = "batch-" + b.id;
      setBar(key, p.audio_h_total > 0 ? p.audio_h_done / p.audio_h_total : 1);
      setField(key + "-done", hours(p.audio_h_done));
      setField(key + "-scenes", plural(p.scenes, "scene", "scenes"));
      setField(key + "-failed", String(p.failed));
      setField(key + "-state", b.state + (b.paused ? " (paused)" : ""));
    });
    body.dataset.batchSnapshots = String(Number(body.dataset.batchSnapshots || 0) + 1);
  }
  function connect() {
    if (!url || source) return;
    source = new EventSource(url);
    source.addEventListener("overview", function (e) { apply(JSON.parse(e.data)); });
    source.addEventListener("batches", function (e) { applyBatches(JSON.parse(e.data)); });
    source.addEventListener("error", function () { if (status) status.textContent = "reconnecting…"; });
  }
  function disconnect() {
    if (source) { source.close(); source = null; }
    if (status) status.textContent = "paused";
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      var pausing = source !== null;
      if (pausing) { disconnect(); } else { connect(); }
      toggle.textContent = pausing ? "Resume live updates" : "Pause live updates";
      toggle.setAttribute("aria-pressed", String(pausing));
    });
  }
  // A hidden tab needs no updates; it gets a fresh snapshot when shown again.
  document.addEventListener("visibilitychange", function () {
    if (!toggle || toggle.getAttribute("aria-pressed") === "true") return;
    if (document.hidden) { if (source) { source.close(); source = null; } } else { connect(); }
  });
  connect();

  var token = document.getElementById("api-token");
  if (token) {
    token.value = sessionStorage.getItem("scenequeue-token") || "";
    token.addEventListener("change", function () { sessionStorage.setItem("scenequeue-token", token.value); });
  }
  var toast = document.getElementById("toast");
  function say(text) {
    toast.textContent = text;
    toast.className = "show";
    setTimeout(function () { toast.className = ""; }, 4000);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    var secret = token ? token.value : "";
    if (!secret) { say("Enter the API token first (top right)."); if (token) token.focus(); return; }
    button.disabled = true;
    fetch(button.dataset.action, { method: "POST", headers: { "Authorization": "Bearer " + secret } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (r) {
        if (!r.ok) { say(r.body.error ? r.body.error.message : "failed"); button.disabled = false; return; }
        body.dataset.lastAction = button.dataset.action;
        say("done");
        setTimeout(function () { location.reload(); }, 600);
      })
      .catch(function () { say("the server did not answer"); button.disabled = false; });
  });
})();
