// Browser test of the portal's sign-in, driven by the Rust e2e test that starts Stratus:
// bootstrap the first user from the one-time token, see the apps, sign out, sign in again,
// open an app: its deployments and log, its settings masked until revealed.
// Env: PORTAL_URL (http://127.0.0.1:PORT), BOOTSTRAP_TOKEN, APP (an app that exists),
// SCREENSHOTS (a directory), CHROMIUM (the browser's path).
import { launch, watchedPage } from "./browser.mjs";

const { PORTAL_URL, BOOTSTRAP_TOKEN, APP, SCREENSHOTS, CHROMIUM } = process.env;
const user = "ada";
const password = "a long enough password";

const browser = await launch(CHROMIUM);
const failures = [];
try {
  const page = await watchedPage(browser, failures);

  await page.goto(`${PORTAL_URL}/portal/#/bootstrap?token=${encodeURIComponent(BOOTSTRAP_TOKEN)}`);
  await page.getByLabel("User").fill(user);
  await page.getByLabel(/^Password/).fill(password);
  await page.screenshot({ path: `${SCREENSHOTS}/bootstrap.png` });
  await page.getByRole("button", { name: "Create and sign in" }).click();
  await page.getByRole("heading", { name: "Apps" }).waitFor();
  await page.getByRole("row", { name: new RegExp(APP) }).waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/apps.png` });

  // Keyboard: sign out is reachable and works.
  await page.getByRole("button", { name: "Sign out" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();

  // A wrong password says so; the right one signs in.
  await page.getByLabel("User").fill(user);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "Wrong user or password" }).waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/sign-in-refused.png` });
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("row", { name: new RegExp(APP) }).waitFor();
  // A reload keeps the session (the cookie), and the CSRF token comes back with it.
  await page.reload();
  await page.getByRole("row", { name: new RegExp(APP) }).waitFor();
  // The app's page: its deployment and log, its settings masked until revealed.
  await page.getByRole("link", { name: APP, exact: true }).click();
  await page.getByRole("heading", { name: APP, level: 1 }).waitFor();
  const deployments = page.getByRole("table", { name: "Deployments" });
  await deployments.getByRole("cell", { name: "Success" }).first().waitFor();
  await deployments.getByRole("button", { name: /^Log of deployment/ }).first().click();
  await page.getByRole("list", { name: /^Log of deployment/ }).getByText("Function hello (httpTrigger)").waitFor();
  const greeting = page.getByLabel("GREETING value");
  if ((await greeting.textContent()) === "Bonjour") failures.push("a setting's value shows before it is revealed");
  await page.getByRole("button", { name: "Reveal GREETING" }).click();
  await page.getByLabel("GREETING value").getByText("Bonjour").waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/app.png`, fullPage: true });
  // Functions, from a replica of the live version: URLs through the front door; disabling
  // one is an app setting.
  if (process.env.OLD_KEY) {
    const functions = page.getByRole("table", { name: "Functions" });
    await functions.getByRole("row", { name: /products/ }).getByText(/\/apps\/shop\/api\/products/).waitFor();
    // The test panel: an HTTP function with a query, then a timer through the admin invoke.
    await page.getByLabel("Function", { exact: true }).selectOption("hello");
    await page.getByLabel("Query").fill("name=Ada");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByLabel("Response body").getByText("Bonjour, Ada!").waitFor();
    await page.getByText(/^200 in \d+ ms$/).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/test-panel.png`, fullPage: true });
    await page.getByLabel("Function", { exact: true }).selectOption("nightly");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByText(/^202 in \d+ ms$/).waitFor();
    const hello = page.getByLabel("hello enabled");
    if (!(await hello.isChecked())) failures.push("hello shows as disabled");
    await hello.uncheck();
    await page.getByText("hello disabled").waitFor();
  }
  // Keys: renew the host key `default` (the old value stops working: checked by the caller
  // through the front door) and make another.
  if (process.env.OLD_KEY) {
    await page.getByRole("button", { name: "Renew host key default" }).click();
    let renewed = null;
    for (let i = 0; i < 50 && !renewed; i++) {
      await page.getByRole("button", { name: "Reveal host key default" }).click();
      const v = await page.getByLabel("host key default value").textContent();
      if (v && v !== process.env.OLD_KEY && !v.startsWith("•")) renewed = v;
      else await page.waitForTimeout(100);
    }
    if (!renewed) throw new Error("the host key was not renewed");
    console.log(`NEW_KEY=${renewed}`);
    await page.getByLabel("New host key name").fill("ci");
    await page.getByRole("button", { name: "New key", exact: true }).click();
    await page.getByRole("button", { name: "Reveal host key ci" }).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/keys.png`, fullPage: true });
  }
  // A new publishing password, shown masked until revealed.
  if (process.env.OLD_KEY) {
    await page.getByRole("button", { name: "New publishing password" }).click();
    await page.getByText("New credential for $" + APP).waitFor();
    await page.getByRole("button", { name: "Reveal publishing password" }).click();
    const pw = await page.getByLabel("publishing password value").textContent();
    if (!pw || pw.startsWith("•") || pw.length < 20) failures.push(`no new publishing password shown: ${pw}`);
    console.log(`PUBLISHING_PASSWORD=${pw}`);
  }
  // The cluster: the worker and the app placed on it.
  await page.getByRole("link", { name: "Cluster" }).click();
  const workers = page.getByRole("table", { name: "Workers" });
  await workers.getByRole("row", { name: /w1/ }).getByText(new RegExp(`${APP} v1`)).waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/cluster.png`, fullPage: true });

  // A new app, a setting set and deleted, the app deleted.
  await page.getByRole("link", { name: "Apps" }).click();
  await page.getByLabel("New app name").fill("fresh");
  await page.getByRole("button", { name: "New app", exact: true }).click();
  await page.getByRole("heading", { name: "fresh", level: 1 }).waitFor();
  await page.getByLabel("Setting name").fill("COLOR");
  await page.getByLabel("Setting value").fill("blue");
  await page.getByRole("button", { name: "Set", exact: true }).click();
  await page.getByRole("button", { name: "Reveal COLOR" }).click();
  await page.getByLabel("COLOR value").getByText("blue").waitFor();
  await page.getByRole("button", { name: "Delete setting COLOR" }).click();
  await page.getByText("No settings.").waitFor();
  await page.getByRole("button", { name: "Delete fresh" }).click();
  await page.getByRole("heading", { name: "Apps" }).waitFor();
  await page.getByRole("row", { name: new RegExp(APP) }).waitFor();
  if (await page.getByRole("link", { name: "fresh", exact: true }).count()) failures.push("the deleted app is still listed");

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "stratus_session");
  if (!session || !session.httpOnly || session.sameSite !== "Strict") {
    failures.push(`the session cookie is not HttpOnly and SameSite=Strict: ${JSON.stringify(session)}`);
  }
  // The wrong-password attempt logs a 401 in the console: that one is expected.
  const unexpected = failures.filter((f) => !f.includes("401"));
  if (unexpected.length) throw new Error(unexpected.join("\n"));
  console.log("portal sign-in: all checks passed");
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
