// Browser test of developing in the portal, driven by the Rust e2e test that starts Stratus:
// sign in, make an app, add an HTTP function from the Python v1 template, change its greeting
// in the code editor and save (the deployment followed to success), call it from the test panel
// and see its invocation's logs, find it in the monitor (history, charts, live log), renew the
// host key and check through the front door that the old value stops working.
// Env: PORTAL_URL (http://127.0.0.1:PORT), FRONT_URL (the front door), BOOTSTRAP_TOKEN (empty
// when the user exists already), PORTAL_USER and PORTAL_PASSWORD, SCREENSHOTS (a directory),
// CHROMIUM (the browser's path).
import { launch, watchedPage } from "./browser.mjs";

const { PORTAL_URL, FRONT_URL, BOOTSTRAP_TOKEN, SCREENSHOTS, CHROMIUM } = process.env;
const user = process.env.PORTAL_USER || "ada";
const password = process.env.PORTAL_PASSWORD || "a long enough password";
const APP = "studio";
const FUNCTION = "greet";
/** What the Python v1 HTTP template logs on each request. */
const LOG_LINE = "Python HTTP trigger function processed a request.";

/** Calls `check` until it gives something truthy or `ms` pass; its last answer. */
async function until(ms, check, pause = 1000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v || Date.now() >= end) return v;
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** The text in the code editor (every line of a short file is drawn). */
async function editorText(page) {
  const lines = await page.locator(".cm-content .cm-line").allTextContents();
  return lines.join("\n");
}

const browser = await launch(CHROMIUM);
const failures = [];
try {
  const page = await watchedPage(browser, failures);

  // Signed in: the first user from the bootstrap token, or the user given.
  if (BOOTSTRAP_TOKEN) {
    await page.goto(`${PORTAL_URL}/portal/#/bootstrap?token=${encodeURIComponent(BOOTSTRAP_TOKEN)}`);
    await page.getByLabel("User").fill(user);
    await page.getByLabel(/^Password/).fill(password);
    await page.getByRole("button", { name: "Create and sign in" }).click();
  } else {
    await page.goto(`${PORTAL_URL}/portal/#/sign-in`);
    await page.getByLabel("User").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
  }
  await page.getByRole("heading", { name: "Apps" }).waitFor();

  // A new app, and its code view with no files yet.
  await page.getByLabel("New app name").fill(APP);
  await page.getByRole("button", { name: "New app", exact: true }).click();
  await page.getByRole("heading", { name: APP, level: 1 }).waitFor();
  await page.getByRole("link", { name: "Code", exact: true }).click();
  await page.getByRole("heading", { name: "Code", level: 1 }).waitFor();

  // A function from the Python v1 template, HTTP with auth level function.
  await page.getByRole("button", { name: "New function" }).click();
  const dialog = page.getByRole("dialog", { name: "New function" });
  await dialog.getByLabel("Function name").fill(FUNCTION);
  await dialog.getByLabel("Language").selectOption({ label: "Python v1" });
  await dialog.getByLabel("Trigger").selectOption({ label: "HTTP" });
  await dialog.getByLabel("Auth level").selectOption("function");
  await page.screenshot({ path: `${SCREENSHOTS}/develop-template.png` });
  await dialog.getByRole("button", { name: "Create function" }).click();
  // Deployed, then its main file opened in the editor.
  const editor = page.getByRole("textbox", { name: `Editor: ${FUNCTION}/__init__.py` });
  await editor.waitFor({ timeout: 120_000 });
  await page.getByText(/^Version \d+ is live\.$/).waitFor();
  const files = page.getByRole("navigation", { name: "Files" });
  for (const path of [`${FUNCTION}/function.json`, `${FUNCTION}/__init__.py`, "host.json", "requirements.txt"]) {
    if (!(await files.getByRole("button", { name: path, exact: true }).count())) failures.push(`${path} is not listed`);
  }

  // The greeting changed in the editor: everything selected, the new text pasted over it.
  const before = await until(10_000, async () => {
    const text = await editorText(page);
    return text.includes("Hello, {name}") && text;
  }, 200);
  if (!before) throw new Error(`the template's greeting is not in the editor: ${await editorText(page)}`);
  await editor.click();
  await page.keyboard.press("ControlOrMeta+A");
  await editor.evaluate((node, text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    node.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, before.replace("Hello, {name}", "Salut, {name}"));
  const edited = await editorText(page);
  if (!edited.includes("Salut, {name}") || edited.includes("Hello, {name}") || edited.split("\n").length !== before.split("\n").length) {
    failures.push(`the edit did not take: ${edited}`);
  }
  await files.getByRole("button", { name: `${FUNCTION}/__init__.py (changed)` }).waitFor();
  await page.getByLabel("Change message").fill("Say Salut");
  await page.screenshot({ path: `${SCREENSHOTS}/develop-editor.png` });
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText(/^Version \d+ is live\.$/).waitFor({ timeout: 120_000 });
  // Read again at the new version: the saved text, nothing left to save.
  await page.getByText("No changes").waitFor();
  if (!(await until(10_000, async () => (await editorText(page)).includes("Salut, {name}"), 200))) {
    failures.push(`the saved greeting is not in the editor after the reload: ${await editorText(page)}`);
  }

  // The test panel: GET greet?name=Ada with the host key, until the Python worker answers.
  await page.getByRole("link", { name: `← ${APP}` }).click();
  await page.getByRole("heading", { name: APP, level: 1 }).waitFor();
  const answer = await until(
    60_000,
    async () => {
      const pick = page.getByLabel("Function", { exact: true });
      const key = page.getByLabel("Key", { exact: true });
      const ready =
        (await pick.count()) &&
        (await pick.locator(`option[value="${FUNCTION}"]`).count()) &&
        (await key.locator('option[value="host"]').count());
      if (!ready) {
        await page.reload();
        await page.getByRole("heading", { name: APP, level: 1 }).waitFor();
        return false;
      }
      await pick.selectOption(FUNCTION);
      await page.getByLabel("Method").selectOption("GET");
      await key.selectOption("host");
      await page.getByLabel("Query").fill("name=Ada");
      await page.getByRole("button", { name: "Send" }).click();
      await page.getByText("Sending…").waitFor({ state: "detached", timeout: 30_000 });
      const body = page.getByLabel("Response body");
      const text = (await body.count()) ? await body.textContent() : null;
      return text?.includes("Salut, Ada") ? text : false;
    },
    2000,
  );
  if (!answer) throw new Error("the test panel never answered with Salut, Ada");
  await page.getByText(/^200 in \d+ ms$/).waitFor();
  const invocationLogs = page.getByRole("region", { name: "Logs of this invocation" });
  await invocationLogs.getByText(LOG_LINE).waitFor({ timeout: 15_000 });
  await invocationLogs.getByText(/^ok/).first().waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/develop-test-panel.png`, fullPage: true });
  // The template set the worker runtime.
  await page.getByRole("button", { name: "Reveal FUNCTIONS_WORKER_RUNTIME" }).click();
  await page.getByLabel("FUNCTIONS_WORKER_RUNTIME value").getByText("python", { exact: true }).waitFor();

  // The monitor: the invocation in the history (with its log line), the charts, the live log.
  await page.getByRole("link", { name: "Monitor", exact: true }).click();
  await page.getByRole("heading", { name: "Monitor", level: 1 }).waitFor();
  const history = page.getByRole("table", { name: "Invocations" });
  const listed = await until(20_000, async () => {
    if (await history.getByRole("row", { name: new RegExp(`${FUNCTION}.*httpTrigger.*ok`) }).count()) return true;
    await page.getByRole("button", { name: "Refresh" }).click();
    return false;
  });
  if (!listed) throw new Error(`no ok invocation of ${FUNCTION} in the monitor's history`);
  await history.getByRole("button", { name: new RegExp(`^Details of ${FUNCTION} at`) }).first().click();
  await page.getByRole("region", { name: "Invocation details" }).getByText(LOG_LINE).waitFor({ timeout: 10_000 });
  await page.getByRole("log", { name: "Live log" }).getByText(LOG_LINE).first().waitFor({ timeout: 30_000 });
  await page.getByRole("img", { name: /^Invocations per minute: latest/ }).waitFor();
  await page.getByRole("img", { name: /^Latency \(ms\): latest p50/ }).waitFor();
  const totals = page.getByText(/in the last 60 minutes\.$/);
  const counted = await until(25_000, async () => (await totals.count()) && /^[1-9]\d* invocations?,/.test((await totals.textContent()) ?? ""));
  if (!counted) failures.push("the monitor's statistics count no invocation");
  await page.screenshot({ path: `${SCREENSHOTS}/develop-monitor.png`, fullPage: true });

  // Keys: renew the host key default; through the front door the old value gets 401, the new 200.
  await page.getByRole("link", { name: `← ${APP}` }).click();
  await page.getByRole("heading", { name: APP, level: 1 }).waitFor();
  await page.getByRole("button", { name: "Reveal host key default" }).click();
  const oldKey = await page.getByLabel("host key default value").textContent();
  if (!oldKey || oldKey.startsWith("•")) throw new Error("the host key default was not revealed");
  await page.getByRole("button", { name: "Renew host key default" }).click();
  const newKey = await until(
    10_000,
    async () => {
      await page.getByRole("button", { name: "Reveal host key default" }).click();
      const v = await page.getByLabel("host key default value").textContent();
      return v && v !== oldKey && !v.startsWith("•") ? v : null;
    },
    200,
  );
  if (!newKey) throw new Error("the host key was not renewed");
  await page.getByRole("heading", { name: "Keys" }).scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${SCREENSHOTS}/develop-keys.png` });
  if (!FRONT_URL) {
    failures.push("FRONT_URL is not set: the keys were not checked through the front door");
  } else {
    const call = async (code) => {
      const r = await fetch(`${FRONT_URL}/apps/${APP}/api/${FUNCTION}?name=Ada&code=${encodeURIComponent(code)}`);
      return { status: r.status, body: await r.text() };
    };
    const refused = await until(30_000, async () => (await call(oldKey)).status === 401);
    if (!refused) failures.push(`the old host key still opens ${FUNCTION}: ${JSON.stringify(await call(oldKey))}`);
    const opened = await until(30_000, async () => {
      const r = await call(newKey);
      return r.status === 200 && r.body.includes("Salut, Ada");
    });
    if (!opened) failures.push(`the new host key does not open ${FUNCTION}: ${JSON.stringify(await call(newKey))}`);
  }

  if (failures.length) throw new Error(failures.join("\n"));
  console.log("portal develop: all checks passed");
} catch (e) {
  console.error(String(e instanceof Error ? e.stack : e));
  if (failures.length && !String(e).includes(failures[0])) console.error(failures.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
