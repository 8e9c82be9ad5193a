// Browser scenarios of the web console (docs/console.md), run by
// console_browser_test.cc against a real `cleanroom serve`: headless Chromium
// (Debian's) driven by playwright-core. Environment: CONSOLE_URL, CONSOLE_KEYS
// (the parties' key folder), CONSOLE_SPKI (the test certificate's key hash),
// CONSOLE_EXPECTED (what the command line answered), CONSOLE_ARTIFACTS (where
// screenshots go), CONSOLE_CHROMIUM, CONSOLE_PLAYWRIGHT.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("CONSOLE_URL");
const keys = env("CONSOLE_KEYS");
const artifacts = env("CONSOLE_ARTIFACTS");
const expected = JSON.parse(fs.readFileSync(env("CONSOLE_EXPECTED"), "utf8"));
const { chromium } = await import(pathToFileURL(path.join(env("CONSOLE_PLAYWRIGHT"), "index.mjs")).href);

const browser = await chromium.launch({
  executablePath: env("CONSOLE_CHROMIUM"),
  headless: true,
  // Root in a container has no user namespace for Chromium's sandbox. The
  // test certificate is trusted by its key alone.
  args: ["--no-sandbox", `--ignore-certificate-errors-spki-list=${env("CONSOLE_SPKI")}`],
});

let failures = 0;
let current = null;
async function scenario(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}\n${e && e.stack ? e.stack : e}`);
    if (current) await current.screenshot({ path: path.join(artifacts, `failed-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  }
}
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: false });

// Rows as the page shows them, from the table.
async function tableRows(page, selector = ".result-table") {
  return page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
}
// The id of the result on show (null when none), and a wait for a result
// other than that one: the results page keeps the last answer in view until
// the next arrives, so waiting for any result table can read the old one.
async function shownResult(page) {
  return page.$$eval("#page-results .result", (els) => (els.length ? els[0].getAttribute("data-result") : null));
}
async function waitForNewResult(page, previous) {
  await page.waitForFunction(
    (prev) => {
      const el = document.querySelector("#page-results:not([hidden]) .result");
      return el && el.getAttribute("data-result") !== prev && el.querySelector(".result-table");
    },
    previous,
  );
}
const fmt = (v) => (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : String(v));
const asShown = (rows) => rows.map((r) => r.map(fmt));

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  // Generous: CI runs this beside other e2e tests on two cores.
  context.setDefaultTimeout(60000);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  const res = await page.goto(url + "/");
  assert.equal(res.status(), 200);
  const csp = res.headers()["content-security-policy"];
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  await page.waitForSelector("body[data-ready=true]", { timeout: 60000 });
  current = page;
  return page;
}

async function signIn(page, party, { file = `${party}.key`, as = null } = {}) {
  await page.setInputFiles("#key-file", path.join(keys, file));
  if (as !== null) await page.fill("#party", as);
  await page.click("#sign-in-button");
}

async function go(page, name) {
  await page.click(`nav a[href="#${name}"]`);
  await page.waitForSelector(`#page-${name}:not([hidden])`);
  await page.waitForSelector("#busy[hidden]", { state: "attached" });
}

async function errorText(page) {
  await page.waitForSelector("#error:not([hidden])");
  return page.textContent("#error");
}

const page = await newPage();

await scenario("a public key or another party's key does not sign in", async () => {
  await signIn(page, "acme", { file: "acme.pub", as: "acme" });
  assert.match(await errorText(page), /error\[KEY_INVALID\]: this is a public key/);
  // Another party's key claiming to be acme: the server refuses the signature.
  await signIn(page, "newsco", { as: "acme" });
  assert.match(await errorText(page), /error\[AUTH_BAD_SIGNATURE\]/);
  assert.equal(await page.isVisible("#app"), false);
});

await scenario("sign in with a key file; the key is kept in the page only", async () => {
  await page.setInputFiles("#key-file", path.join(keys, "acme.key"));
  assert.equal(await page.inputValue("#party"), "acme");  // NAME.key -> NAME, as the CLI
  await page.click("#sign-in-button");
  await page.waitForSelector("#app:not([hidden])");
  assert.match(await page.textContent("#who"), /Signed in as acme/);
  const stored = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    idb: indexedDB.databases ? (await indexedDB.databases()).length : 0,
    caches: (await caches.keys()).length,
    file: document.querySelector("#key-file").value,
  }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: "", idb: 0, caches: 0, file: "" });
  await page.waitForSelector("#page-collaboration:not([hidden]) #parties tbody tr");
  const parties = await tableRows(page, "#parties");
  assert.deepEqual(parties.map((r) => r[0]), ["acme (you)", "newsco", "analyst"]);
  assert.equal(parties[2][1], "query");
  assert.deepEqual(parties.map((r) => r[3]), ["yes", "yes", "yes"]);
  assert.match(await page.textContent("#collab-facts"), /Stateactive.*Regioneu.*Retention90 days/s);
  await shot(page, "collaboration");
});

await scenario("the datasets: owner, schema with roles, rows; never values", async () => {
  await go(page, "datasets");
  await page.waitForSelector('article[data-dataset="purchases"]');
  for (const [name, rows] of Object.entries(expected.rows)) {
    const text = await page.textContent(`article[data-dataset="${name}"] .rows`);
    assert.equal(text, rows.toLocaleString("en-US"), name);
  }
  const imp = await tableRows(page, 'article[data-dataset="impressions"] .schema');
  assert.equal(imp[0][0], "email");
  assert.equal(imp[0][2], "join_key");  // the stored type of a pseudonymised key is the room's
  assert.deepEqual(imp.map((r) => r[0]), ["email", "campaign", "shown_at", "cost"]);
  assert.match(await page.textContent('article[data-dataset="impressions"]'), /Ownernewsco/);
  assert.equal((await page.textContent("main")).includes("@"), false, "no e-mail value on the page");
  await shot(page, "datasets");
});

await scenario("a hostile query: check and run show QUERY_REFUSED with the reason", async () => {
  await go(page, "query");
  assert.match(await page.textContent("#schema"), /allowed: sum, avg\(cost\)/);
  await page.fill("#sql", "SELECT email, cost FROM impressions");
  await page.click("#check");
  const text = await errorText(page);
  assert.match(text, /cleanroom: error\[QUERY_REFUSED\]: \S+/);
  assert.ok(text.length > "cleanroom: error[QUERY_REFUSED]: ".length + 10, text);
  await shot(page, "query-refused");
  await page.click("#run");
  assert.match(await errorText(page), /error\[QUERY_REFUSED\]/);
  assert.equal(await page.isVisible("#page-results"), false, "nothing was released");
});

await scenario("an allowed query by keyboard: tab to the editor, type, Ctrl+Enter; rows and chart", async () => {
  await page.fill("#sql", "");
  await page.focus('nav a[href="#query"]');
  let tabs = 0;
  while ((await page.evaluate(() => document.activeElement.id)) !== "sql") {
    await page.keyboard.press("Tab");
    assert.ok(++tabs < 40, "the editor is reachable with Tab");
  }
  await page.keyboard.type(expected.query_sql);
  await page.click("#check");
  await page.waitForSelector("#check-result .status.ok");
  assert.match(await page.textContent("#check-result"), /Allowed\. It reads impressions, releases campaign, people, and goes to acme, newsco \(you included\)/);
  await shot(page, "query");
  await page.focus("#sql");
  const before = await shownResult(page);
  await page.keyboard.press("Control+Enter");
  await waitForNewResult(page, before);
  assert.deepEqual(await tableRows(page), asShown(expected.query.rows));
  assert.ok(expected.query.rows.length > 1);
  assert.equal(await page.locator(".chart rect.bar").count(), expected.query.rows.length);
  await shot(page, "result");
});

await scenario("CSV download holds the rows", async () => {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\n");
  assert.equal(lines[0], expected.query.columns.join(","));
  assert.deepEqual(lines.slice(1), expected.query.rows.map((r) => r.join(",")));
});

await scenario("a template as a form with a typed parameter", async () => {
  await go(page, "templates");
  const form = 'form[data-template="conversions_by_campaign"]';
  assert.equal(await page.getAttribute(`${form} input[name=since]`, "type"), "date");
  await page.fill(`${form} input[name=since]`, "2020-01-01");
  await shot(page, "templates");
  const before = await shownResult(page);
  await page.click(`${form} button[type=submit]`);
  await waitForNewResult(page, before);
  // The template's SQL has no ORDER BY: its rows come in any order.
  const sorted = (rows) => rows.map((r) => JSON.stringify(r)).sort();
  assert.deepEqual(sorted(await tableRows(page)), sorted(asShown(expected.template.rows)));
});

await scenario("open a stored result from the list", async () => {
  await go(page, "results");
  await page.waitForSelector("#result-list tbody tr[data-result]");
  const listed = await page.locator("#result-list tbody tr[data-result]").count();
  assert.ok(listed >= 2, `${listed} results listed`);
  // The campaign query the command line asked, found by its id: the list is
  // newest first by the second, and results made in the same second are in
  // id order, so its place in the list is not fixed.
  assert.match(expected.query.result_id, /^[0-9a-f]{32}$/);
  const first = page.locator(`#result-list tbody tr[data-result="${expected.query.result_id}"]`);
  assert.equal(await first.count(), 1, "the command line's result is listed");
  await first.locator("button.open").click();
  await page.waitForSelector(`.result[data-result="${expected.query.result_id}"] .result-table`);
  assert.deepEqual(await tableRows(page), asShown(expected.query.rows));
  await page.selectOption("#chart-kind", "line");
  assert.equal(await page.locator(".chart polyline").count(), 1);
  await shot(page, "results");
});

await scenario("an answer with differential privacy: intervals as error bars", async () => {
  await go(page, "query");
  await page.fill("#sql", "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign");
  await page.fill("#epsilon", "1.5");
  await page.click("#check");
  await page.waitForSelector("#check-result .status.ok");
  assert.match(await page.textContent("#check-result"), /answered with differential privacy at epsilon 1\.5\./);
  const before = await shownResult(page);
  await page.click("#run");
  await waitForNewResult(page, before);
  const rows = await tableRows(page);
  assert.ok(rows.length > 1, `${rows.length} rows`);
  for (const r of rows) assert.match(r[1], /^[\d,.-]+ ± [\d,.]+$/, r.join(" "));
  assert.equal(await page.locator(".chart g.errorbar").count(), rows.length);
  assert.match(await page.textContent(".result"), /epsilon spent 1\.5/);
  await shot(page, "result-dp");
});

await scenario("budget gauges: epsilon spent of the period's total, and usage", async () => {
  await go(page, "budget");
  await page.waitForSelector("#budget-view meter");
  const text = await page.textContent("#budget-view");
  assert.match(text, /Epsilon spent this period\s*1\.5 of 30 \(left 28\.5\)/);
  assert.equal(await page.getAttribute("#budget-view meter", "value"), "1.5");
  assert.equal(await page.getAttribute("#budget-view meter", "max"), "30");
  assert.match(text, /Queries answered with noise this period: 1/);
  await shot(page, "budget");
});

await scenario("the audit log verifies in the page against room.pub", async () => {
  await go(page, "audit");
  await page.waitForSelector("#audit-status.ok");
  const status = await page.textContent("#audit-status");
  assert.match(status, /^Chain intact: \d+ entries/);
  assert.ok(Number(status.match(/(\d+) entries/)[1]) > 10, status);
  assert.ok(await page.locator("#audit-list tbody tr").count() > 10);
  await shot(page, "audit");
  // The same checker on a log of our own making, intact and then changed:
  // it must tell each change apart (this is what makes "intact" mean something).
  const tampered = await page.evaluate(async () => {
    const { verifyAuditLog } = await import("/console/audit.js");
    const sodium = (await import("/console/libsodium-wrappers.mjs")).default;
    await sodium.ready;
    // A log signed by a key of our own making: intact, then changed three ways.
    const kp = sodium.crypto_sign_keypair();
    const lines = [];
    let prev = "0".repeat(64);
    for (let seq = 1; seq <= 3; seq++) {
      const body = `{"actor":"acme","details":{"epsilon":1.0,"n":${seq}},"event":"query.run","prev":"${prev}","seq":${seq},"time":"2026-12-02T00:00:00Z"}`;
      const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))), (b) => b.toString(16).padStart(2, "0")).join("");
      const raw = Uint8Array.from(hash.match(/../g).map((x) => parseInt(x, 16)));
      const sig = sodium.to_base64(sodium.crypto_sign_detached(raw, kp.privateKey), sodium.base64_variants.URLSAFE_NO_PADDING);
      lines.push(body.replace(`,"prev"`, `,"hash":"${hash}","prev"`).replace(`,"time"`, `,"sig":"${sig}","time"`));
      prev = hash;
    }
    const log = lines.join("\n") + "\n";
    const other = sodium.crypto_sign_keypair();
    return {
      intact: await verifyAuditLog(sodium, log, kp.publicKey),
      changed: await verifyAuditLog(sodium, log.replace('"n":2', '"n":7'), kp.publicKey),
      dropped: await verifyAuditLog(sodium, [lines[0], lines[2]].join("\n") + "\n", kp.publicKey),
      cut: await verifyAuditLog(sodium, log.slice(0, -20), kp.publicKey),
      forged: await verifyAuditLog(sodium, log, other.publicKey),
    };
  });
  assert.equal(tampered.intact.ok, true);
  assert.equal(tampered.intact.entries, 3);
  assert.match(tampered.changed.reason, /^line 2 was changed/);
  assert.match(tampered.dropped.reason, /^line 2 follows a gap/);
  assert.match(tampered.cut.reason, /^line 3 is incomplete/);
  assert.match(tampered.forged.reason, /^line 1 has a bad signature/);
});

await scenario("a party without receive_results sees no rows", async () => {
  const other = await newPage();
  await signIn(other, "analyst");
  await other.waitForSelector("#app:not([hidden])");
  await go(other, "query");
  await other.fill("#sql", expected.query_sql);
  await other.click("#check");
  await other.waitForSelector("#check-result .status.ok");
  assert.match(await other.textContent("#check-result"), /not to you: you will see no rows/);
  await other.click("#run");
  await other.waitForSelector("#page-results:not([hidden]) .result .no-rows");
  assert.equal(await other.locator(".result-table").count(), 0);
  assert.match(await other.textContent(".result .no-rows"), /released to acme, newsco\. You are not one of its receivers/);
  await go(other, "results");
  await other.waitForSelector("#result-list tbody tr");
  assert.equal(await other.locator("#result-list tbody tr[data-result]").count(), 0);
  await shot(other, "no-rows");
  current = page;
});

await browser.close();
if (failures) {
  console.log(`console: ${failures} scenario(s) failed`);
  process.exit(1);
}
console.log("console: all scenarios passed");
