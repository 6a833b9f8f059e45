// runway's dashboard: one module, no framework, no build step. Every number comes from the
// API (/v1/openapi.json describes it); the server checks every role again, the buttons
// only hide what a role may not do. Text from the server is always set as text, never as
// markup.

const RANK = { viewer: 0, deployer: 1, approver: 2, admin: 3 };

let session = null; // {name, role, csrf, expires_at}
let viewStream = null; // the EventSource of the view shown, closed when it changes
let everything = null; // the stream of every journal entry: lists refresh on news
let refreshView = null; // what to call when news arrives for the view shown

const $ = (id) => document.getElementById(id);

/** An element: attributes (on* are listeners, `class` the class), then children (text or nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function say(text) {
  $("live").textContent = text;
}

function can(role) {
  return session !== null && RANK[session.role] >= RANK[role];
}

// ---- the API ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && session) headers["x-csrf-token"] = session.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401 && path !== "/v1/session") {
    signedOut("Your session ended: sign in again.");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const segment = encodeURIComponent;

// ---- formatting -------------------------------------------------------------------------

function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  return isNaN(d) ? rfc3339 : d.toLocaleString();
}

function clock(rfc3339) {
  const d = new Date(rfc3339);
  return isNaN(d) ? "" : d.toLocaleTimeString();
}

function number(v, digits = 3) {
  if (v === null || v === undefined) return "—";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v.toPrecision(digits)).toString();
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "—" : `${number(seconds * 1000)} ms`;
}

function percent(v) {
  return v === null || v === undefined ? "—" : `${number(v * 100)}%`;
}

const STATUS_CLASS = {
  succeeded: "ok", running: "warn", awaiting_approval: "warn", failed: "bad", rolled_back: "bad",
};

function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}` }, text);
}

function statusBadge(status) {
  return badge(status.replace("_", " "), STATUS_CLASS[status]);
}

function table(headers, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing yet.")))));
}

/** A one-line summary of a journal entry. */
function describe(entry) {
  const d = entry.detail || {};
  switch (entry.event) {
    case "started": return `started ${d.kind} of ${d.version}${d.by ? ` by ${d.by}` : ""}${d.reason ? `: ${d.reason}` : ""}`;
    case "canary_step": return `canary step ${d.step} of ${d.of}: ${d.weight}% of requests to the canary`;
    case "analysis": return `analysis: ${decisionText(d.decision)}`;
    case "paused": return `paused${d.by ? ` by ${d.by}` : ""}${d.reason ? `: ${d.reason}` : ""}`;
    case "promoted": return `promoted by ${d.by}${d.full ? " to 100%" : ` at ${d.weight}%`}`;
    case "commanded": return `${d.command} by ${d.by}`;
    case "hook_started": return `hook ${d.phase}: ${(d.argv || []).join(" ")}`;
    case "hook_finished": return `hook ${d.phase} ${d.outcome}${d.detail ? `: ${d.detail}` : ""}`;
    case "checks": return `${d.phase} checks ${d.passed ? "passed" : "failed"}`;
    case "succeeded": return "succeeded";
    case "failed": return `failed: ${d.reason || ""}`;
    case "rolling_back": return `rolling back: ${d.reason || ""}`;
    case "awaiting_approval": return `waits for ${d.approvals} approval(s) by ${(d.approvers || []).join(", ")}`;
    case "approved": return `approved by ${d.by} (${d.role})`;
    case "rejected": return `rejected by ${d.by}: ${d.reason}`;
    case "flag_changed": return `flag ${d.flag}: ${d.change}${d.by ? ` (by ${d.by})` : ""}`;
    case "flag_step": return `flag ${d.flag}: ${d.percent}% of the targeting keys`;
    case "flag_baseline": return `baseline before the rollout: ${d.requests} requests, ${d.errors} errors${d.p99_seconds != null ? `, p99 ${Math.round(d.p99_seconds * 1000)} ms` : ""}`;
    default: {
      const text = Object.entries(d).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${k} ${v}`).join(", ");
      return `${entry.event.replaceAll("_", " ")}${text ? `: ${text}` : ""}`;
    }
  }
}

function decisionText(decision) {
  if (typeof decision === "string") return decision.toLowerCase();
  if (decision && typeof decision === "object") {
    const [kind, reason] = Object.entries(decision)[0];
    return `${kind.toLowerCase()}: ${reason}`;
  }
  return "";
}

// ---- confirmation -----------------------------------------------------------------------

/** Asks to confirm an action (and for a reason where the API takes one): the reason, or null. */
function confirmAction({ title, detail, reason }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-detail").textContent = detail || "";
  const box = $("confirm-reason-box");
  const field = $("confirm-reason");
  box.hidden = !reason;
  field.value = "";
  field.required = reason === "required";
  $("confirm-reason-label").textContent = reason === "required" ? "Reason (required)" : "Reason";
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener("close", onClose);
      $("confirm-cancel").removeEventListener("click", onCancel);
      resolve(value);
    };
    const onClose = () => done(dialog.returnValue === "ok" ? field.value.trim() : null);
    const onCancel = () => { dialog.returnValue = "cancel"; dialog.close(); };
    dialog.addEventListener("close", onClose);
    $("confirm-cancel").addEventListener("click", onCancel);
    dialog.returnValue = "";
    dialog.showModal();
    (reason ? field : $("confirm-ok")).focus();
  });
}

/** A button for an action the role `role` may take; nothing for a role that may not. */
function action(label, role, run, { danger = false, confirm } = {}) {
  if (!can(role)) return null;
  const button = h("button", {
    type: "button",
    class: danger ? "danger" : "",
    "data-action": label.toLowerCase(),
    onclick: async () => {
      const reason = await confirmAction(confirm);
      if (reason === null) return;
      button.disabled = true;
      try {
        await run(reason);
        say(`${label}: done`);
      } catch (e) {
        say(`${label} refused: ${e.message}`);
      } finally {
        button.disabled = false;
        if (refreshView) refreshView();
      }
    },
  }, label);
  return button;
}

// ---- charts -----------------------------------------------------------------------------

/**
 * A line chart of canary and stable over time. `series`: [{cls, label, points: [[t, v]]}];
 * `threshold`: a value (or a function of the stable value) drawn as a dashed red line.
 */
function lineChart({ title, series, threshold, format = number, floor = 1 }) {
  const W = 480, H = 200, L = 66, R = 10, T = 10, B = 24;
  const all = series.flatMap((x) => x.points);
  const figure = h("figure", { "data-points": all.length }, h("figcaption", {}, title));
  if (all.length === 0) {
    figure.append(h("p", { class: "muted" }, "No data yet."));
    return figure;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const limits = [];
  if (typeof threshold === "number") limits.push(threshold);
  let hi = Math.max(...all.map((p) => p[1]), ...limits, 0);
  if (hi === 0) hi = floor;
  hi *= 1.1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / hi) * (H - T - B);
  const chart = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  for (let i = 0; i <= 4; i++) {
    const v = (hi / 4) * i;
    chart.append(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    chart.append(s("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  chart.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  chart.append(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  chart.append(s("text", { x: L, y: H - 6 }, "0 s"));
  chart.append(s("text", { x: W - R, y: H - 6, "text-anchor": "end" }, `${Math.round(t1 - t0)} s`));
  if (typeof threshold === "number") {
    chart.append(s("line", { class: "threshold", x1: L, x2: W - R, y1: y(threshold), y2: y(threshold) }));
  } else if (typeof threshold === "function") {
    const stable = series.find((x) => x.cls === "stable");
    if (stable && stable.points.length) {
      const d = stable.points.map((p, i) => `${i ? "L" : "M"}${x(p[0])},${y(Math.min(threshold(p[1]), hi))}`).join(" ");
      chart.append(s("path", { class: "threshold", d }));
    }
  }
  for (const line of series) {
    if (!line.points.length) continue;
    const d = line.points.map((p, i) => `${i ? "L" : "M"}${x(p[0])},${y(p[1])}`).join(" ");
    chart.append(s("path", { class: line.cls, d }));
    for (const p of line.points.length < 40 ? line.points : []) {
      chart.append(s("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, class: line.cls }));
    }
  }
  figure.append(chart);
  figure.append(h("div", { class: "legend" },
    series.map((line) => h("span", {}, h("span", { class: `swatch ${line.cls}` }), line.label)),
    threshold !== undefined && threshold !== null ? h("span", {}, h("span", { class: "swatch threshold" }), "threshold") : null));
  return figure;
}

/** The threshold of a condition such as `fail_if > 0.05` or `fail_if > stable * 1.5`. */
function thresholdOf(condition) {
  const absolute = /[<>]=?\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*(?:for\s+\S+)?\s*$/.exec(condition);
  if (absolute) return Number(absolute[1]);
  const times = /stable\s*\*\s*([0-9.]+)/.exec(condition) || /([0-9.]+)\s*x\s*stable/.exec(condition);
  if (times) return (v) => v * Number(times[1]);
  const plus = /stable\s*\+\s*([0-9.]+)/.exec(condition);
  if (plus) return (v) => v + Number(plus[1]);
  return null;
}

// ---- views ------------------------------------------------------------------------------

const VIEWS = {
  services: viewServices,
  deployments: viewDeployment,
  history: viewHistory,
  approvals: viewApprovals,
  incidents: viewIncidents,
  audit: viewAudit,
  dora: viewDora,
  checks: viewChecks,
  flags: viewFlags,
};

async function show() {
  if (viewStream) { viewStream.close(); viewStream = null; }
  refreshView = null;
  if (!session) return;
  // `#/view/argument?filters`: the filters are the view's own business.
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("?")[0].split("/");
  const view = VIEWS[name] || viewServices;
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.getAttribute("href") === `#/${name || "services"}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const root = $("view");
  const draw = async () => {
    try {
      const content = await view(arg ? decodeURIComponent(arg) : undefined);
      root.replaceChildren(...[content].flat().filter((c) => c !== null && c !== undefined));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        root.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load this view: ${e.message}`));
      }
    }
  };
  refreshView = draw;
  await draw();
}

async function viewServices() {
  const status = await api("GET", "/v1/status");
  const cards = status.services.map((svc) => {
    const serving = svc.serving.map((r) => `${r.version} (#${r.deployment_id}, ${r.replicas} replica${r.replicas === 1 ? "" : "s"})`).join(", ");
    const modes = [
      svc.maintenance ? badge("maintenance", "warn") : null,
      svc.read_only ? badge("read-only", "warn") : null,
      svc.frozen ? badge("frozen", "bad") : null,
      svc.locked ? badge("locked", "warn") : null,
    ].filter(Boolean);
    const op = svc.deployment;
    const replicas = svc.replicas.map((r) => h("tr", {},
      h("td", {}, r.name), h("td", {}, r.version), h("td", {}, r.state),
      h("td", {}, badge(r.health, r.health === "healthy" ? "ok" : r.health === "unhealthy" ? "bad" : "")),
      h("td", {}, r.in_rotation ? "yes" : "no"), h("td", { class: "num" }, r.restarts),
      h("td", {}, r.last_error || "")));
    const metrics = svc.metrics.map((m) => h("tr", {},
      h("td", {}, m.release), h("td", { class: "num" }, m.requests), h("td", { class: "num" }, percent(m.error_rate)),
      h("td", { class: "num" }, ms(m.latency_p50)), h("td", { class: "num" }, ms(m.latency_p95)), h("td", { class: "num" }, ms(m.latency_p99))));
    return h("article", { class: "card", "data-service": svc.name },
      h("h2", {}, svc.name, modes),
      h("dl", { class: "kv" },
        h("dt", {}, "Serving"), h("dd", {}, serving || "nothing"),
        h("dt", {}, "Listens"), h("dd", {}, svc.listen),
        svc.locked ? [h("dt", {}, "Locked"), h("dd", {}, `by ${svc.locked.by}: ${svc.locked.reason}`)] : null,
        svc.frozen ? [h("dt", {}, "Frozen"), h("dd", {}, svc.frozen.reason)] : null,
        op ? [h("dt", {}, "Under way"), h("dd", {},
          op.deployment_id ? h("a", { href: `#/deployments/${op.deployment_id}` }, `#${op.deployment_id} ${op.kind || ""} ${op.version || ""}`) : null,
          " ", op.description)] : null,
        svc.last_failure ? [h("dt", {}, "Last failure"), h("dd", {},
          h("a", { href: `#/deployments/${svc.last_failure.id}` }, `#${svc.last_failure.id} ${svc.last_failure.version}`),
          `: ${svc.last_failure.reason || svc.last_failure.status}`)] : null),
      h("h3", {}, "Replicas"),
      table(["Replica", "Version", "State", "Health", "In rotation", "Restarts", "Last error"], replicas),
      svc.metrics.length ? [h("h3", {}, "Traffic by release"),
        table(["Release", "Requests", "Errors", "p50", "p95", "p99"], metrics)] : null);
  });
  // The state store refusing writes (a full disk) concerns every service: said above them all.
  const fault = status.store_fault
    ? h("p", { class: "error", role: "alert", "data-store-fault": "" },
      `The state store refuses writes since ${status.store_fault.since} (${status.store_fault.error}): `
      + `${status.store_fault.held_writes} held, written once it takes writes again. Running operations `
      + "were stopped and taken back; new ones are refused. Free space for the state dir.")
    : null;
  return [h("h1", {}, "Services"), fault,
    cards.length ? h("div", { class: "cards" }, cards) : h("p", { class: "muted" }, "No service has been deployed yet: `runway deploy VERSION`.")];
}

/** The live view of one deployment: its stream keeps it current. */
async function viewDeployment(id) {
  // The deployment's fields, and its journal beside them.
  const { journal, ...d } = await api("GET", `/v1/deployments/${segment(id)}`);
  const root = h("div", { class: "deployment", "data-deployment": d.id });
  const model = {
    deployment: d,
    journal,
    samples: [], // [{t, releases: [ReleaseMetrics]}]
    hooks: [],
  };
  try { model.hooks = await api("GET", `/v1/deployments/${segment(id)}/hooks`); } catch (_) { /* shown as none */ }
  // Rolling back is offered on the page of the release that serves.
  try {
    const status = await api("GET", "/v1/status");
    const service = status.services.find((x) => x.name === d.service);
    model.serving = service && service.serving.length ? service.serving[0].deployment_id : null;
  } catch (_) { model.serving = null; }
  const redraw = () => root.replaceChildren(...deploymentParts(model));
  redraw();
  if (d.status === "running" || d.status === "awaiting_approval") {
    const last = model.journal.length ? model.journal[model.journal.length - 1].seq : 0;
    const stream = new EventSource(`/v1/deployments/${segment(id)}/stream?after=${last}&metrics=true`);
    viewStream = stream;
    let pending = null;
    const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; redraw(); }, 150); };
    stream.addEventListener("journal", (e) => { model.journal.push(JSON.parse(e.data)); soon(); });
    stream.addEventListener("deployment", (e) => {
      model.deployment = JSON.parse(e.data);
      if (["succeeded", "failed", "rolled_back"].includes(model.deployment.status)) {
        stream.close();
        say(`Deployment #${model.deployment.id} ${model.deployment.status.replace("_", " ")}`);
        api("GET", `/v1/deployments/${segment(id)}/hooks`).then((hooks) => { model.hooks = hooks; redraw(); }).catch(() => {});
      }
      soon();
    });
    stream.addEventListener("metrics", (e) => {
      const sample = JSON.parse(e.data);
      model.samples.push({ t: Date.parse(sample.at) / 1000, releases: sample.releases, canary: sample.canary });
      soon();
    });
  }
  return root;
}

function deploymentParts(model) {
  const d = model.deployment;
  const journal = model.journal;
  const steps = journal.filter((e) => e.event === "canary_step").map((e) => e.detail);
  const analyses = journal.filter((e) => e.event === "analysis").map((e) => ({ ...e.detail, at: e.at }));
  const checks = journal.filter((e) => e.event === "checks");
  const lastStep = steps[steps.length - 1];
  const running = d.status === "running";
  const pause = [...journal].reverse().find((e) => ["paused", "resumed_by_operator", "promoted", "canary_step"].includes(e.event));
  const paused = running && pause && pause.event === "paused";
  const parts = [
    h("h1", {}, `#${d.id} ${d.kind} of ${d.service} to ${d.version} `, statusBadge(d.status)),
    h("dl", { class: "kv" },
      h("dt", {}, "Requested by"), h("dd", {}, d.requested_by || "—", d.request_reason ? `: ${d.request_reason}` : ""),
      h("dt", {}, "Started"), h("dd", {}, when(d.started_at)),
      d.finished_at ? [h("dt", {}, "Finished"), h("dd", {}, when(d.finished_at))] : null,
      d.previous_version ? [h("dt", {}, "Previous"), h("dd", {}, d.previous_version)] : null,
      d.deploy_type ? [h("dt", {}, "Type"), h("dd", {}, d.deploy_type)] : null,
      d.reason ? [h("dt", {}, "Outcome"), h("dd", {}, d.reason)] : null),
  ];
  // Steering a rollout under way; rolling back one that has ended.
  const service = segment(d.service);
  const command = (name) => () => api("POST", `/v1/services/${service}/canary/${name}`);
  const buttons = running ? [
    steps.length ? action("Promote", "deployer", command("promote"), { confirm: { title: `Promote ${d.version}?`, detail: "The canary goes to its next step now, without waiting for the analysis." } }) : null,
    steps.length && !paused ? action("Pause", "deployer", command("pause"), { confirm: { title: `Pause ${d.version}?`, detail: "The canary stays at its weight until resumed." } }) : null,
    steps.length && paused ? action("Resume", "deployer", command("resume"), { confirm: { title: `Resume ${d.version}?` } }) : null,
    action("Abort", "deployer", command("abort"), { danger: true, confirm: { title: `Abort ${d.version}?`, detail: `${d.previous_version || "The previous release"} gets all traffic back.` } }),
  ] : d.status === "succeeded" && model.serving === d.id ? [
    action("Roll back", "deployer", (reason) => api("POST", `/v1/services/${service}/rollback`, { reason: reason || undefined }), {
      danger: true,
      confirm: { title: `Roll ${d.service} back?`, detail: "The previous release comes back with its config, secrets and schema.", reason: "optional" },
    }),
  ] : [];
  if (buttons.some(Boolean)) parts.push(h("div", { class: "actions" }, buttons));

  if (steps.length) {
    const of = lastStep.of;
    const items = [];
    for (let i = 1; i <= of; i++) {
      const done = i < lastStep.step || (!running && d.status === "succeeded");
      items.push(h("li", { class: done ? "done" : i === lastStep.step && running ? "now" : "" }, `step ${i}`));
    }
    parts.push(h("h2", {}, "Canary"),
      h("p", {}, `Step ${lastStep.step} of ${of}: `, h("strong", { "data-weight": lastStep.weight }, `${lastStep.weight}%`), " of requests to the canary",
        paused ? [" — ", badge("paused", "warn"), pause.detail.reason ? ` ${pause.detail.reason}` : ""] : ""),
      h("ol", { class: "steps", "aria-label": "Canary steps" }, items));
    const left = pauseLeft(model, running);
    if (left !== null) parts.push(h("p", { class: "muted" }, `About ${Math.ceil(left)} s left in this step's pause.`));
  }

  parts.push(...liveCharts(model, d));
  if (analyses.length) parts.push(...verdictCharts(analyses), verdictTable(analyses));

  if (checks.length) {
    parts.push(h("h2", {}, "Checks"));
    for (const c of checks) {
      const results = Array.isArray(c.detail.results) ? c.detail.results : [];
      parts.push(h("h3", {}, `${c.detail.phase}: `, badge(c.detail.passed ? "passed" : "failed", c.detail.passed ? "ok" : "bad")),
        table(["Check", "Kind", "Status", "Detail"], results.map((r) => h("tr", {},
          h("td", {}, r.name), h("td", {}, r.kind), h("td", {}, badge(r.status, r.status === "pass" ? "ok" : r.status === "fail" ? "bad" : "warn")), h("td", {}, r.detail)))));
    }
  }
  parts.push(h("h2", {}, "Hook runs"),
    table(["Phase", "Command", "Outcome", "Detail", "Output (end)"], model.hooks.map((r) => h("tr", {},
      h("td", {}, r.phase), h("td", {}, h("code", {}, (r.argv || []).join(" "))),
      h("td", {}, badge(r.outcome, r.outcome === "ok" ? "ok" : r.outcome === "running" ? "warn" : "bad")),
      h("td", {}, r.detail || ""), h("td", {}, h("code", {}, (r.output || "").slice(-400)))))));
  parts.push(h("h2", {}, "Journal"),
    h("ol", { class: "timeline" }, journal.map((e) => h("li", { "data-event": e.event }, h("time", { datetime: e.at }, clock(e.at)), describe(e)))));
  return parts;
}

/** Seconds left in the timed pause of the step under way, from the newest sample. */
function pauseLeft(model, running) {
  const sample = model.samples[model.samples.length - 1];
  if (!running || !sample || !sample.canary || sample.canary.pause_left_seconds == null) return null;
  const left = sample.canary.pause_left_seconds - (Date.now() / 1000 - sample.t);
  return left > 0 ? left : null;
}

/** Request rate, error rate and latencies of canary and stable, from the stream's samples. */
function liveCharts(model, d) {
  if (model.samples.length < 2) {
    return d.status === "running" ? [h("h2", {}, "Live traffic"), h("p", { class: "muted" }, "Collecting samples…")] : [];
  }
  const t0 = model.samples[0].t;
  const pick = (release) => (sample) => sample.releases.find((r) => r.release === release);
  const canary = pick(d.version);
  const stable = pick(d.previous_version);
  const rate = (get) => {
    const points = [];
    for (let i = 1; i < model.samples.length; i++) {
      const a = get(model.samples[i - 1]), b = get(model.samples[i]);
      const dt = model.samples[i].t - model.samples[i - 1].t;
      if (a && b && dt > 0) points.push([model.samples[i].t - t0, Math.max(0, (b.requests - a.requests) / dt)]);
    }
    return points;
  };
  const errors = (get) => {
    const points = [];
    for (let i = 1; i < model.samples.length; i++) {
      const a = get(model.samples[i - 1]), b = get(model.samples[i]);
      if (!a || !b) continue;
      const n = b.requests - a.requests;
      const bad = (b.status_5xx + b.failed) - (a.status_5xx + a.failed);
      if (n > 0) points.push([model.samples[i].t - t0, bad / n]);
    }
    return points;
  };
  const level = (get, field) => model.samples.map((x) => [x.t - t0, get(x)]).filter(([, m]) => m && m.requests > 0).map(([t, m]) => [t, m[field]]);
  const pair = (f) => [
    { cls: "canary", label: `canary ${d.version}`, points: f(canary) },
    { cls: "stable", label: `stable ${d.previous_version || ""}`, points: d.previous_version ? f(stable) : [] },
  ];
  return [h("h2", {}, "Live traffic"),
    h("div", { class: "charts" },
      lineChart({ title: "Requests per second", series: pair(rate) }),
      lineChart({ title: "Error rate", series: pair(errors), format: percent, floor: 0.05 }),
      ["latency_p50", "latency_p95", "latency_p99"].map((field) => lineChart({
        title: `${field.replace("latency_", "")} latency (since the release started)`,
        series: pair((get) => level(get, field)),
        format: ms,
        floor: 0.01,
      })))];
}

/** Each judged metric over the intervals, canary beside stable, with its condition's threshold. */
function verdictCharts(analyses) {
  const t0 = Date.parse(analyses[0].at) / 1000;
  const names = [...new Set(analyses.flatMap((a) => a.metrics.map((m) => m.name)))];
  return [h("h2", {}, "Analysis"), h("div", { class: "charts" }, names.map((name) => {
    const rows = analyses.map((a) => ({ t: Date.parse(a.at) / 1000 - t0, m: a.metrics.find((m) => m.name === name) })).filter((r) => r.m);
    const condition = rows.length ? rows[rows.length - 1].m.condition : "";
    return lineChart({
      title: `${name} (${condition})`,
      series: [
        { cls: "canary", label: "canary", points: rows.filter((r) => r.m.canary !== null && r.m.canary !== undefined).map((r) => [r.t, r.m.canary]) },
        { cls: "stable", label: "stable", points: rows.filter((r) => r.m.stable !== null && r.m.stable !== undefined).map((r) => [r.t, r.m.stable]) },
      ],
      threshold: thresholdOf(condition),
    });
  }))];
}

function verdictTable(analyses) {
  const rows = analyses.flatMap((a, i) => a.metrics.map((m, j) => h("tr", { "data-decision": decisionText(a.decision).split(":")[0] },
    j === 0 ? h("td", { rowspan: a.metrics.length }, `${i + 1}`, h("br"), h("span", { class: "muted" }, clock(a.at))) : null,
    j === 0 ? h("td", { rowspan: a.metrics.length }, `step ${a.step}`, h("br"), h("span", { class: "muted" }, `${a.canary_requests} canary requests`)) : null,
    h("td", {}, m.name), h("td", { class: "num" }, number(m.canary)), h("td", { class: "num" }, number(m.stable)),
    h("td", {}, h("code", {}, m.condition)),
    h("td", { class: m.verdict === "Pass" ? "verdict-pass" : m.verdict === "Fail" ? "verdict-fail" : "verdict-other" }, m.verdict.toLowerCase()),
    h("td", {}, m.reason),
    j === 0 ? h("td", { rowspan: a.metrics.length }, decisionText(a.decision)) : null)));
  return h("section", { "aria-label": "Verdicts" }, h("h3", {}, "Every interval's verdict"),
    table(["Interval", "Step", "Metric", "Canary", "Stable", "Condition", "Verdict", "Numbers", "Decision"], rows));
}

async function viewHistory() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const filter = { service: params.get("service") || "", status: params.get("status") || "", kind: params.get("kind") || "" };
  // The server filters: over the whole history, not only the newest page of it.
  const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
  query.set("limit", "200");
  const [shown, status] = await Promise.all([api("GET", `/v1/deployments?${query}`), api("GET", "/v1/status")]);
  const services = status.services.map((svc) => svc.name).sort();
  const select = (name, label, options) => h("div", {},
    h("label", { for: `filter-${name}` }, label),
    h("select", {
      id: `filter-${name}`,
      onchange: (e) => {
        filter[name] = e.target.value;
        const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
        location.hash = `#/history${q.toString() ? `?${q}` : ""}`;
      },
    }, h("option", { value: "" }, "all"), options.map((o) => h("option", { value: o, selected: filter[name] === o }, o))));
  return [h("h1", {}, "History"),
    h("div", { class: "filters" },
      select("service", "Service", services),
      select("status", "Status", ["succeeded", "failed", "rolled_back", "running", "awaiting_approval"]),
      select("kind", "Kind", ["deploy", "rollback", "scale", "restore", "secrets", "flag"])),
    table(["#", "Service", "Kind", "Version", "Status", "By", "Started", "Outcome"], shown.map((d) => h("tr", {},
      h("td", {}, h("a", { href: `#/deployments/${d.id}` }, `#${d.id}`)), h("td", {}, d.service), h("td", {}, d.kind),
      h("td", {}, d.version), h("td", {}, statusBadge(d.status)), h("td", {}, d.requested_by),
      h("td", {}, when(d.started_at)), h("td", {}, d.reason || "")))),
    h("p", { class: "muted", "data-shown": shown.length }, `${shown.length} shown${shown.length === 200 ? " (the newest 200)" : ""}.`)];
}

async function viewApprovals() {
  const waiting = await api("GET", "/v1/approvals");
  const rows = waiting.map((a) => {
    const d = a.deployment;
    return h("tr", { "data-deployment": d.id },
      h("td", {}, h("a", { href: `#/deployments/${d.id}` }, `#${d.id}`)), h("td", {}, d.service), h("td", {}, d.version),
      h("td", {}, d.deploy_type || ""), h("td", {}, `${d.requested_by}${d.request_reason ? `: ${d.request_reason}` : ""}`),
      h("td", {}, a.changed.join(", ")), h("td", { class: "num" }, `${a.counted} of ${a.needed}`),
      h("td", {}, h("code", {}, (d.digest || "").slice(0, 19))),
      h("td", {}, h("div", { class: "actions" },
        action("Approve", "approver", () => api("POST", `/v1/deployments/${d.id}/approve`, { digest: d.digest }), {
          confirm: { title: `Approve #${d.id}: ${d.service} ${d.version}?`, detail: `You approve exactly this: digest ${d.digest} (changed: ${a.changed.join(", ") || "nothing"}). A changed request needs a new approval.` },
        }),
        // Its requester may withdraw it; anyone else needs to be an approver.
        action("Reject", d.requested_by === session.name ? "deployer" : "approver", (reason) => api("POST", `/v1/deployments/${d.id}/reject`, { reason }), {
          danger: true, confirm: { title: `Reject #${d.id}?`, reason: "required" },
        }))));
  });
  return [h("h1", {}, "Approvals"),
    table(["#", "Service", "Version", "Type", "Requested", "Changed", "Approvals", "Digest", ""], rows)];
}

/** What a flag serves, in a few words. */
function flagServes(f) {
  if (!f.enabled) return `${f.off_variant} to everyone (off)`;
  const parts = (f.rules || []).map((r) => r.target.kind === "keys"
    ? `${r.variant} to ${r.target.keys.length} key(s)`
    : `${r.variant} where ${r.target.attribute} is ${r.target.one_of.map((v) => JSON.stringify(v)).join(" or ")}`);
  if (f.rollout) parts.push(`${f.rollout.variant} to ${f.rollout.percent}%`);
  parts.push(`${f.default_variant} otherwise`);
  return parts.join(", ");
}

async function viewFlags() {
  const status = await api("GET", "/v1/status");
  const lists = await Promise.all(status.services.map((s) => api("GET", `/v1/services/${encodeURIComponent(s.name)}/flags`)
    .then((flags) => flags.map((f) => ({ service: s.name, ...f })))));
  const rows = lists.flat().map((f) => {
    const d = f.definition;
    const path = `/v1/services/${encodeURIComponent(f.service)}/flags/${encodeURIComponent(f.name)}`;
    return h("tr", { "data-flag": f.name },
      h("td", {}, f.service), h("td", {}, h("code", {}, f.name)), h("td", {}, d.kind),
      h("td", {}, f.rollout ? h("a", { href: `#/deployments/${f.rollout}` }, badge(`rolling out #${f.rollout}`, "warn"))
        : badge(d.enabled ? "on" : "off", d.enabled ? "ok" : "")),
      h("td", {}, flagServes(d)),
      h("td", {}, `${f.revision}: ${f.updated_by}, ${when(f.updated_at)}`),
      h("td", {}, d.enabled ? h("div", { class: "actions" },
        action("Turn off", "deployer", (reason) => api("POST", `${path}/off`, reason ? { reason } : undefined), {
          danger: true, confirm: { title: `Turn flag ${f.name} of ${f.service} off?`, detail: `Everyone gets its off variant (${d.off_variant}) at their next evaluation; a rollout under way ends.`, reason: "optional" },
        })) : null));
  });
  return [h("h1", {}, "Feature flags"),
    h("p", { class: "muted" }, "Applications read them through OpenFeature's OFREP provider at /v1/services/SERVICE. Changes are in History (kind flag)."),
    table(["Service", "Flag", "Kind", "State", "Serves", "Changed", ""], rows)];
}

async function viewIncidents() {
  const incidents = await api("GET", "/v1/incidents?limit=100");
  return [h("h1", {}, "Incidents"),
    table(["#", "Severity", "Service", "Title", "Opened", "State", ""], incidents.map((i) => h("tr", {},
      h("td", {}, `#${i.id}`), h("td", {}, badge(i.severity, i.severity === "SEV-1" || i.severity === "SEV-0" ? "bad" : "warn")),
      h("td", {}, i.service), h("td", {}, i.title, i.deployment ? [" (", h("a", { href: `#/deployments/${i.deployment}` }, `#${i.deployment}`), ")"] : ""),
      h("td", {}, when(i.opened_at)),
      h("td", {}, i.resolved_at ? `resolved by ${i.resolved_by}` : i.acked_at ? `acknowledged by ${i.acked_by}` : badge("open", "bad")),
      h("td", {}, i.resolved_at ? null : h("div", { class: "actions" },
        i.acked_at ? null : action("Acknowledge", "deployer", () => api("POST", `/v1/incidents/${i.id}/ack`), { confirm: { title: `Acknowledge incident #${i.id}?` } }),
        action("Resolve", "deployer", (note) => api("POST", `/v1/incidents/${i.id}/resolve`, { note: note || undefined }), { confirm: { title: `Resolve incident #${i.id}?`, reason: "optional" } }))))))];
}

async function viewAudit() {
  const [trail, check] = await Promise.all([api("GET", "/v1/audit"), api("GET", "/v1/audit/verify")]);
  const newest = trail.slice(-200).reverse();
  return [h("h1", {}, "Audit trail"),
    h("p", {}, check.ok ? badge("chain intact", "ok") : badge("chain broken", "bad"), " ", check.message || `${check.entries ?? trail.length} entries`),
    table(["#", "When", "Who", "Role", "From", "Action", "Detail", "Result"], newest.map((e) => h("tr", {},
      h("td", { class: "num" }, e.seq), h("td", {}, when(e.at)), h("td", {}, e.identity), h("td", {}, e.role), h("td", {}, e.remote),
      h("td", {}, h("code", {}, e.action)), h("td", {}, h("code", {}, JSON.stringify(e.detail))),
      h("td", {}, e.status < 400 ? badge(e.result, "ok") : badge(`${e.status} ${e.result}`, "bad")))))];
}

async function viewDora() {
  const [report, history] = await Promise.all([api("GET", "/v1/reports/dora"), api("GET", "/v1/deployments?limit=500")]);
  const cards = report.metrics.map((m) => h("article", { class: "card", "data-metric": m.name },
    h("h2", {}, m.name.replaceAll("_", " ")),
    h("p", {}, h("strong", {}, m.shown), " ", badge(m.rating, m.rating === "meets target" ? "ok" : m.rating === "below threshold" ? "bad" : "")),
    h("dl", { class: "kv" }, h("dt", {}, "Target"), h("dd", {}, m.target), h("dt", {}, "Threshold"), h("dd", {}, m.threshold), h("dt", {}, "From"), h("dd", {}, m.basis))));
  return [h("h1", {}, "DORA metrics"), h("p", { class: "muted" }, `${when(report.since)} to ${when(report.until)}`),
    h("div", { class: "cards" }, cards), h("h2", {}, "Deployments per week"), weeklyChart(history)];
}

/** Bars per week: deployments that succeeded, and those that failed or were rolled back. */
function weeklyChart(history) {
  const week = (t) => Math.floor(Date.parse(t) / (7 * 86400e3));
  const weeks = new Map();
  for (const d of history.filter((x) => x.kind === "deploy")) {
    const w = week(d.started_at);
    const counts = weeks.get(w) || { ok: 0, bad: 0 };
    if (d.status === "succeeded") counts.ok++;
    else if (d.status === "failed" || d.status === "rolled_back") counts.bad++;
    weeks.set(w, counts);
  }
  const keys = [...weeks.keys()].sort().slice(-12);
  if (!keys.length) return h("p", { class: "muted" }, "No deployments yet.");
  const W = 480, H = 180, L = 30, B = 24, T = 10;
  const hi = Math.max(...keys.map((k) => weeks.get(k).ok + weeks.get(k).bad), 1);
  const bw = (W - L - 10) / keys.length;
  const chart = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Deployments per week, succeeded and failed" });
  chart.append(s("line", { class: "axis", x1: L, x2: W - 10, y1: H - B, y2: H - B }));
  chart.append(s("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, hi));
  keys.forEach((k, i) => {
    const { ok, bad } = weeks.get(k);
    const scale = (H - B - T) / hi;
    const x = L + i * bw + 3;
    chart.append(s("rect", { class: "bar-ok", x, width: bw - 6, y: H - B - ok * scale, height: ok * scale }, s("title", {}, `${ok} succeeded`)));
    chart.append(s("rect", { class: "bar-bad", x, width: bw - 6, y: H - B - (ok + bad) * scale, height: bad * scale }, s("title", {}, `${bad} failed or rolled back`)));
    const start = new Date(k * 7 * 86400e3);
    chart.append(s("text", { x: x + (bw - 6) / 2, y: H - 6, "text-anchor": "middle" }, `${start.getUTCMonth() + 1}/${start.getUTCDate()}`));
  });
  return h("figure", {}, h("figcaption", {}, "Deploys per week: succeeded (green), failed or rolled back (red)"), chart);
}

async function viewChecks() {
  const status = await api("GET", "/v1/status");
  const sections = [];
  for (const svc of status.services) {
    const runs = await api("GET", `/v1/services/${segment(svc.name)}/checks/history?limit=14`);
    sections.push(h("h2", {}, svc.name),
      table(["When", "Result", "Checks"], runs.map((run) => {
        const results = Array.isArray(run.results) ? run.results : [];
        const failing = results.filter((r) => r.status !== "pass");
        return h("tr", {}, h("td", {}, when(run.started_at)), h("td", {}, badge(run.passed ? "passed" : "failed", run.passed ? "ok" : "bad")),
          h("td", {}, `${results.length - failing.length} of ${results.length} passed`,
            failing.length ? [": ", failing.map((r) => `${r.name} ${r.status} (${r.detail})`).join("; ")] : ""));
      })));
  }
  return [h("h1", {}, "Daily checklists"), sections.length ? sections : h("p", { class: "muted" }, "No service yet.")];
}

// ---- session ----------------------------------------------------------------------------

function signedIn(view) {
  session = view;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("identity").textContent = `${view.name} (${view.role})`;
  if (!everything) {
    everything = new EventSource("/v1/events/stream");
    let pending = null;
    everything.addEventListener("journal", () => {
      // Lists refresh on news; the deployment view has its own stream.
      if (location.hash.startsWith("#/deployments/") || pending) return;
      pending = setTimeout(() => { pending = null; if (refreshView) refreshView(); }, 1000);
    });
  }
  show();
}

function signedOut(message) {
  session = null;
  if (everything) { everything.close(); everything = null; }
  if (viewStream) { viewStream.close(); viewStream = null; }
  $("view").replaceChildren();
  $("nav").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("token").focus();
}

async function start() {
  $("sign-in-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const field = $("token");
    try {
      const view = await api("POST", "/v1/session", { token: field.value.trim() });
      field.value = "";
      signedIn(view);
      $("main").focus();
    } catch (err) {
      $("sign-in-error").textContent = err.status === 401 ? "That token is unknown or revoked." : `Could not sign in: ${err.message}`;
    }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch (_) { /* signed out either way */ }
    signedOut("Signed out.");
  });
  window.addEventListener("hashchange", show);
  try {
    signedIn(await api("GET", "/v1/session"));
  } catch (_) {
    signedOut("");
  }
}

start();
