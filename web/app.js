// The console's page logic: sign-in with the party's key file (kept in this
// module's memory only), the pages, and every call to the room API through
// api.js. No storage API is used: nothing outlives the page.

import sodium from "./libsodium-wrappers.mjs";
import { Api, ApiError } from "./api.js";
import { KeyFileError, parseKeyText, parsePublicText, partyOfFileName, wipe } from "./keyfile.js";
import { verifyAuditLog } from "./audit.js";
import { cellValue, defaultKind, formatNumber, isNoisy, numericColumns, renderChart } from "./chart.js";

const $ = (sel) => document.querySelector(sel);
const PAGES = ["collaboration", "datasets", "query", "templates", "results", "budget", "audit"];

// The signed-in session: the key lives here and nowhere else.
let session = null;

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

// ----- Errors and progress ---------------------------------------------------

// As the CLI prints a refusal: cleanroom: error[CODE]: message.
function showError(e) {
  const box = $("#error");
  const code = e instanceof ApiError || e instanceof KeyFileError ? e.code : "INTERNAL";
  const message = e && e.message ? e.message : String(e);
  box.replaceChildren(h("strong", { class: "code", "data-code": code, text: `cleanroom: error[${code}]` }), `: ${message}`);
  box.hidden = false;
  box.focus?.();
}

function clearError() {
  $("#error").hidden = true;
  $("#error").replaceChildren();
}

// Runs `work` with the progress line shown and the page's buttons disabled,
// so a long query is visibly under way and cannot be sent twice.
async function busy(text, work) {
  clearError();
  $("#busy-text").textContent = text;
  $("#busy").hidden = false;
  const buttons = [...document.querySelectorAll("button")].filter((b) => !b.disabled);
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await work();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    $("#busy").hidden = true;
    buttons.forEach((b) => (b.disabled = false));
  }
}

// ----- Sign-in --------------------------------------------------------------

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new KeyFileError("FILE_UNREADABLE", "cannot read the key file"));
    reader.readAsText(file);
  });
}

async function signIn(event) {
  event.preventDefault();
  const file = $("#key-file").files[0];
  const party = $("#party").value.trim();
  if (!file) return showError(new KeyFileError("USAGE", "choose your party's key file (NAME.key)"));
  await busy("Signing in…", async () => {
    let text = await readFile(file);
    const identity = parseKeyText(sodium, text);
    text = null;
    $("#key-file").value = "";  // the file input holds no reference to the key either
    const api = new Api(sodium, identity, party);
    let spec;
    try {
      spec = await api.call("GET", "/v1/spec");
    } catch (e) {
      wipe(identity);
      throw e;
    }
    // The server would refuse a wrong key on every request; said here first, in words.
    const declared = spec.parties.find((p) => p.name === party);
    if (!declared || declared.key_fingerprint !== identity.fingerprint) {
      wipe(identity);
      throw new KeyFileError("KEY_INVALID", `this key is not the key the spec names for party ${party}`);
    }
    session = { api, identity, party, spec, fingerprint: identity.fingerprint, result: null };
    $("#sign-in").hidden = true;
    $("#app").hidden = false;
    $("#who").textContent = `Signed in as ${party} (key ${identity.fingerprint})`;
    $("#who").hidden = false;
    $("#sign-out").hidden = false;
    if (!location.hash || location.hash === "#") location.hash = "#collaboration";
    else route();
  });
}

function signOut() {
  if (session) wipe(session.identity);
  session = null;
  location.hash = "";
  location.reload();
}

// ----- Pages -----------------------------------------------------------------

async function route() {
  if (!session) return;
  clearError();  // a refusal belongs to the page it happened on
  const name = location.hash.replace(/^#/, "") || "collaboration";
  const page = PAGES.includes(name) ? name : "collaboration";
  for (const p of PAGES) $(`#page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  await LOADERS[page]();
}

const LOADERS = {
  async collaboration() {
    await busy("Loading the collaboration…", async () => {
      const s = await session.api.call("GET", "/v1/status");
      const facts = [
        ["Collaboration", s.collaboration],
        ["Description", session.spec.description ?? "—"],
        ["State", s.active ? "active" : `not active (${s.status})`],
        ["Spec version (hash)", s.spec_hash],
        ["Region", s.region ?? "—"],
        ["Retention", s.retention_days ? `${s.retention_days} days` : "kept until removed"],
        ["Activated", s.activated_at ?? "—"],
        ["Datasets stored", `${s.datasets_stored} of ${s.datasets_declared}`],
        ["Room key", s.room_key_fingerprint],
      ];
      $("#collab-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
      $("#collab-facts").dataset.active = String(s.active);
      $("#parties tbody").replaceChildren(...s.parties.map((p) => h("tr", {},
        h("th", { scope: "row", text: p.name + (p.name === session.party ? " (you)" : "") }),
        h("td", { text: p.abilities.join(", ") }),
        h("td", {}, h("code", { text: p.key_fingerprint })),
        h("td", { text: p.signed ? "yes" : "no" }))));
    });
  },

  async datasets() {
    await busy("Loading the datasets…", async () => {
      const d = await session.api.call("GET", "/v1/datasets");
      const specOf = (name) => session.spec.datasets.find((x) => x.name === name);
      $("#dataset-list").replaceChildren(...d.datasets.map((ds) => {
        const declared = specOf(ds.name);
        const columns = ds.columns ?? declared?.columns ?? [];
        return h("article", { class: "dataset", "data-dataset": ds.name },
          h("h3", { text: ds.name }),
          h("dl", { class: "facts" },
            h("dt", { text: "Owner" }), h("dd", { text: ds.owner }),
            h("dt", { text: "State" }), h("dd", { text: ds.state }),
            h("dt", { text: "Rows" }), h("dd", { class: "rows", text: ds.rows === undefined ? "—" : formatNumber(ds.rows) }),
            h("dt", { text: "Version" }), h("dd", { text: ds.package_id ? `package ${ds.package_id.slice(0, 12)}… ingested ${ds.ingested_at}` : "—" }),
            h("dt", { text: "Kept until" }), h("dd", { text: ds.retain_until ?? "—" })),
          h("table", { class: "schema" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Column" }), h("th", { scope: "col", text: "Type" }), h("th", { scope: "col", text: "Role" }))),
            h("tbody", {}, columns.map((c) => h("tr", {}, h("td", {}, h("code", { text: c.name })), h("td", { text: c.type }), h("td", { text: c.role }))))),
          declared ? ruleBlock(declared) : null);
      }));
    });
  },

  async query() {
    $("#schema").replaceChildren(h("h3", { text: "What you may ask" }),
      ...session.spec.datasets.map((d) => h("details", { open: true, class: "rule", "data-dataset": d.name },
        h("summary", {}, h("code", { text: d.name }), ` (owner ${d.owner})`),
        h("ul", { class: "columns" }, d.columns.map((c) => h("li", {}, h("code", { text: c.name }), ` ${c.type}, ${c.role}`))),
        ruleBlock(d))));
  },

  async templates() {
    const list = session.spec.templates;
    if (!list.length) {
      $("#template-list").replaceChildren(h("p", { text: "The spec has no templates." }));
      return;
    }
    $("#template-list").replaceChildren(...list.map(templateForm));
  },

  async results() {
    await busy("Loading your results…", async () => {
      const r = await session.api.call("GET", "/v1/results");
      const rows = [...r.results].reverse();
      $("#result-list tbody").replaceChildren(...rows.map((m) => h("tr", { "data-result": m.result_id },
        h("td", { text: m.created_at }),
        h("td", { text: m.requested_by }),
        h("td", { text: m.template ?? "—" }),
        h("td", { text: (m.datasets || []).join(", ") }),
        h("td", { text: (m.columns || []).join(", ") }),
        h("td", { text: m.released_rows ?? "—" }),
        h("td", {}, h("button", { type: "button", class: "open", "aria-label": `Open result ${m.result_id}`, onclick: () => openResult(m.result_id) }, "Open")))));
      if (!rows.length) $("#result-list tbody").replaceChildren(h("tr", {}, h("td", { colspan: 7, text: "No result is sealed to you yet." })));
    });
    renderResultView();
  },

  async budget() {
    await busy("Loading the budget…", async () => {
      const b = await session.api.call("GET", "/v1/budget");
      const view = $("#budget-view");
      if (!b.dp_enabled) {
        view.replaceChildren(h("p", { class: "status", text: "Differential privacy is not enabled for this collaboration (no privacy.dp in the spec): no epsilon budget. Answers are protected by the thresholds of each dataset's rule." }),
          usage(b.queries));
        return;
      }
      view.replaceChildren(
        gauge("Epsilon spent this period", b.epsilon_spent, b.epsilon_total, `${formatNumber(b.epsilon_spent)} of ${formatNumber(b.epsilon_total)} (left ${formatNumber(b.epsilon_left)})`),
        usage(b.queries),
        h("p", { class: "muted", text: `Period ${b.period ?? "—"}: ${b.period_starts_at ?? "start"} to ${b.period_ends_at ?? "no end"} (refresh: ${b.refresh ?? "none"})` }),
        h("h3", { text: "Every period" }),
        h("table", {}, h("thead", {}, h("tr", {}, ["Period", "Spent", "Total", "Queries"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, (b.periods || []).map((p) => h("tr", {}, h("td", { text: p.period }), h("td", { text: formatNumber(p.epsilon_spent) }), h("td", { text: formatNumber(p.epsilon_total) }), h("td", { text: p.queries }))))));
    });
  },

  async audit() {
    await busy("Fetching and checking the audit log…", async () => {
      const [log, pub] = await Promise.all([
        session.api.call("GET", "/v1/audit", undefined, { text: true }),
        session.api.call("GET", "/v1/room.pub", undefined, { text: true }),
      ]);
      const room = parsePublicText(sodium, pub);
      const report = await verifyAuditLog(sodium, log, room.signPk);
      const status = $("#audit-status");
      status.dataset.ok = String(report.ok);
      status.textContent = report.ok
        ? `Chain intact: ${report.entries} entries, each signed by the room key, head ${report.head.slice(0, 16)}…`
        : `Chain broken: ${report.reason} (${report.entries} entries before it verify)`;
      status.className = report.ok ? "status ok" : "status broken";
      $("#audit-list tbody").replaceChildren(...[...report.list].reverse().slice(0, 500).map((e) => h("tr", {},
        h("td", { text: e.seq }), h("td", { text: e.time }), h("td", {}, h("code", { text: e.event })),
        h("td", { text: e.actor }), h("td", { class: "details", text: JSON.stringify(e.details) }))));
    });
  },
};

function ruleBlock(d) {
  const r = d.rule;
  const items = [h("li", { text: `rule: ${r.kind}` }),
    h("li", { text: `at least ${r.min_distinct_units} distinct ${session.spec.privacy.unit}s per released row` }),
    h("li", { text: `results go to: ${r.receivers.join(", ") || "nobody"}` })];
  if (r.aggregates) {
    for (const [col, fns] of Object.entries(r.aggregates)) items.push(h("li", {}, "allowed: ", h("code", { text: `${fns.join(", ")}(${col})` })));
  }
  if (r.list_columns) items.push(h("li", { text: `listable columns: ${r.list_columns.join(", ")}` }));
  if (r.templates) items.push(h("li", { text: `templates only: ${r.templates.join(", ")}` }));
  return h("ul", { class: "rule-items" }, items);
}

// The budget has no cap on the number of queries: a count, not a gauge.
function usage(queries) {
  return h("p", { class: "usage" }, "Queries answered with noise this period: ", h("strong", { text: String(queries) }));
}

function gauge(label, value, max, text) {
  const id = `g-${label.replace(/\W+/g, "-").toLowerCase()}`;
  return h("p", { class: "gauge" }, h("label", { for: id, text: label }), h("br"),
    h("meter", { id, min: 0, max, value, low: max * 0.5, high: max * 0.8, optimum: 0 }), " ", h("span", { class: "gauge-text", text }));
}

// ----- Templates -------------------------------------------------------------

const INPUT_TYPES = { date: "date", timestamp: "datetime-local", int64: "number", integer: "number", double: "number", boolean: "checkbox" };

function templateForm(t) {
  const fields = t.parameters.map((p) => {
    const id = `t-${t.name}-${p.name}`;
    const type = INPUT_TYPES[p.type] ?? "text";
    return h("p", {}, h("label", { for: id, text: `${p.name} (${p.type})` }), h("br"),
      h("input", { id, name: p.name, type, required: type !== "checkbox", step: p.type === "double" ? "any" : type === "number" ? "1" : null, "data-type": p.type }));
  });
  const form = h("form", { class: "template", "data-template": t.name },
    h("h3", {}, h("code", { text: t.name })),
    h("pre", { class: "sql", text: t.sql.trim() }),
    fields,
    h("p", { class: "buttons" }, h("button", { type: "submit", text: "Run template" })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const params = {};
    for (const input of form.querySelectorAll("input[name]")) {
      let v = input.type === "checkbox" ? String(input.checked) : input.value;
      if (input.type === "datetime-local" && v) v = v.replace("T", " ");
      params[input.name] = v;
    }
    await runAndShow(`Running template ${t.name}…`, `/v1/templates/${encodeURIComponent(t.name)}/run`, { params });
  });
  return form;
}

// ----- Query -------------------------------------------------------------------

function queryBody() {
  const body = { sql: $("#sql").value };
  const receivers = $("#receivers").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (receivers.length) body.receivers = receivers;
  if ($("#epsilon").value !== "") body.epsilon = Number($("#epsilon").value);
  return body;
}

async function checkQuery() {
  $("#check-result").replaceChildren();
  const r = await busy("Checking the query against the rules…", () => session.api.call("POST", "/v1/query/check", queryBody()));
  if (!r) return;
  $("#check-result").replaceChildren(h("p", { class: "status ok", "data-ok": "true" },
    `Allowed. It reads ${r.datasets.join(", ")}, releases ${r.columns.join(", ")}, and goes to ${r.receivers.join(", ")}`,
    r.caller_receives ? " (you included)" : " (not to you: you will see no rows)",
    r.dp ? `, answered with differential privacy at epsilon ${r.epsilon}.` : "."));
}

async function runAndShow(text, path, body) {
  const r = await busy(text, () => session.api.call("POST", path, body));
  if (!r) return;
  let rs = null;
  if (r.caller_receives) {
    try {
      rs = session.api.openSealed(r.sealed, r.result_id);
    } catch (e) {
      return showError(e);
    }
  }
  session.result = { id: r.result_id, receivers: r.receivers, rs };
  if (location.hash === "#results") route();
  else location.hash = "#results";
}

async function openResult(id) {
  const r = await busy("Fetching and opening the sealed result…", () => session.api.call("GET", `/v1/results/${id}`));
  if (!r) return;
  try {
    session.result = { id, receivers: null, rs: session.api.openSealed(r.sealed, id) };
  } catch (e) {
    return showError(e);
  }
  renderResultView();
  $("#result-view").focus();
}

// ----- Result view -------------------------------------------------------------

function cellText(cell) {
  if (isNoisy(cell)) return `${formatNumber(cell.value)} ± ${formatNumber((cell.ci_high - cell.ci_low) / 2)}`;
  if (cell === null) return "NULL";
  return typeof cell === "number" ? formatNumber(cell) : String(cell);
}

// results::Render "csv": the header and rows; a noisy column's value, then
// NAME_ci_low and NAME_ci_high.
export function toCsv(rs) {
  const noisy = rs.columns.map((_, i) => rs.rows.some((r) => isNoisy(r[i])));
  const quote = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const header = rs.columns.flatMap((c, i) => (noisy[i] ? [c, `${c}_ci_low`, `${c}_ci_high`] : [c]));
  const lines = [header.map(quote).join(",")];
  for (const row of rs.rows) {
    lines.push(row.flatMap((cell, i) => (noisy[i] ? (isNoisy(cell) ? [cell.value, cell.ci_low, cell.ci_high] : [cell, "", ""]) : [cell])).map(quote).join(","));
  }
  return lines.join("\n") + "\n";
}

function renderResultView() {
  const view = $("#result-view");
  view.setAttribute("tabindex", "-1");
  const cur = session.result;
  if (!cur) {
    view.replaceChildren(h("p", { class: "muted", text: "Run a query or a template, or open a result below." }));
    return;
  }
  if (!cur.rs) {
    view.replaceChildren(h("article", { class: "result", "data-result": cur.id },
      h("h3", { text: `Result ${cur.id}` }),
      h("p", { class: "status no-rows", text: `This result was released to ${cur.receivers.join(", ")}. You are not one of its receivers, so no rows reach you: nothing was sealed to your key.` })));
    return;
  }
  const rs = cur.rs;
  const numeric = numericColumns(rs);
  const labels = rs.columns.map((_, i) => i).filter((i) => !numeric.includes(i));
  const labelIndex = labels[0] ?? 0;
  const valueIndex = numeric.find((i) => i !== labelIndex);
  const table = h("table", { class: "result-table" },
    h("thead", {}, h("tr", {}, rs.columns.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rs.rows.map((row) => h("tr", {}, row.map((cell) => h("td", { class: typeof cellValue(cell) === "number" ? "num" : null, title: isNoisy(cell) ? `95% interval ${cell.ci_low} to ${cell.ci_high}` : null, text: cellText(cell) }))))));
  const summary = [`${rs.rows.length} rows released`];
  if (rs.withheld_rows === null || rs.withheld_rows === undefined) summary.push("the count of withheld groups is itself withheld");
  else summary.push(`${rs.withheld_rows} groups withheld (too few people)`);
  if (rs.epsilon_spent !== undefined && rs.epsilon_spent !== null) summary.push(`epsilon spent ${rs.epsilon_spent}`);

  const chartBox = h("div", { class: "chart-box" });
  const controls = h("form", { class: "chart-controls" });
  const draw = () => {
    if (valueIndex === undefined) {
      chartBox.replaceChildren(h("p", { class: "muted", text: "No numeric column to chart." }));
      return;
    }
    const label = Number(controls.querySelector("#chart-label").value);
    const value = Number(controls.querySelector("#chart-value").value);
    const kind = controls.querySelector("#chart-kind").value;
    chartBox.replaceChildren(renderChart(rs, { kind, label, value, title: `${rs.columns[value]} by ${rs.columns[label]}` }));
  };
  if (valueIndex !== undefined) {
    const select = (id, text, options, selected) => h("label", { for: id }, `${text} `,
      h("select", { id, onchange: draw }, options.map(([v, t]) => h("option", { value: v, selected: String(v) === String(selected) }, t))));
    controls.append(
      select("chart-kind", "Chart", [["bar", "bars"], ["line", "line"]], defaultKind(rs, labelIndex)), " ",
      select("chart-label", "by", rs.columns.map((c, i) => [i, c]), labelIndex), " ",
      select("chart-value", "of", numeric.map((i) => [i, rs.columns[i]]), valueIndex));
  }
  const download = h("button", { type: "button", id: "csv", onclick: () => {
    const url = URL.createObjectURL(new Blob([toCsv(rs)], { type: "text/csv" }));
    const a = h("a", { href: url, download: `result-${rs.result_id}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } }, "Download CSV");
  view.replaceChildren(h("article", { class: "result", "data-result": rs.result_id },
    h("h3", { text: `Result ${rs.result_id}` }),
    h("p", { class: "muted", text: summary.join("; ") }),
    controls, chartBox, table, h("p", {}, download)));
  draw();
}

// ----- Start -------------------------------------------------------------------

async function start() {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#key-file").addEventListener("change", () => {
    const f = $("#key-file").files[0];
    const name = f ? partyOfFileName(f.name) : null;
    if (name) $("#party").value = name;
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#check").addEventListener("click", checkQuery);
  $("#query-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    runAndShow("Running the query…", "/v1/query", queryBody());
  });
  $("#sql").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      $("#query-form").requestSubmit();
    }
  });
  window.addEventListener("hashchange", route);
  $("#sign-in-button").disabled = true;
  await sodium.ready;
  $("#loading").hidden = true;
  $("#sign-in-button").disabled = false;
  document.body.dataset.ready = "true";
}

start().catch((e) => showError(e));
