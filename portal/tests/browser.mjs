// The browser the portal's tests drive: Debian's Chromium, headless, with the flags this
// machine needs (no sandbox as root, no background networking), and a page at laptop size
// whose errors (page errors, console errors) are collected as failures.
import { chromium } from "playwright-core";

export async function launch(executablePath) {
  return chromium.launch({
    executablePath: executablePath || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new page of `browser` at 1366x768 that accepts dialogs and adds its errors to `failures`. */
export async function watchedPage(browser, failures) {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  page.on("dialog", (d) => void d.accept());
  page.on("console", (m) => {
    if (m.type() === "error") failures.push(`console error: ${m.text()} (${m.location().url})`);
  });
  return page;
}
