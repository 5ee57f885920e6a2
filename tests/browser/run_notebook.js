// Drives a real JupyterLab or Voila page in headless Chromium: open a notebook,
// run every cell (JupyterLab; Voila runs them itself), click a widget button,
// wait for a text to appear, read what the plotly figures draw, take a screenshot.
//
// Used by tests/test_notebooks_browser.py. playwright-core comes from
// .ci/node_modules (NODE_PATH); the browser is Debian's /usr/bin/chromium, never
// one downloaded by a tool. Every wait is bounded, and the browser is closed on
// every path out of this script.
//
// usage: node run_notebook.js CONFIG_JSON
//   config: {url, mode ("lab" or "voila"), click, before, after, screenshot, userDataDir,
//            chromium, timeoutMs}; click may be "" to only open the page
// prints one JSON line: {ok, stage, before, after, status, figures, sliders, captions,
//                        consoleErrors, offsiteFailures, error}

"use strict";

const { chromium } = require("playwright-core");

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

async function textOf(page, selector) {
  const nodes = await page.locator(selector).allInnerTexts();
  return nodes.join("\n");
}

async function waitForText(page, text, timeoutMs) {
  await page.waitForFunction(
    (wanted) => document.body && document.body.innerText.includes(wanted),
    text,
    { timeout: timeoutMs, polling: 250 },
  );
}

// Every text must be the title of a live (widget) figure that draws something;
// a text listed n times must be in n such figures (all of them redraw on one click).
async function waitForFigures(page, texts, timeoutMs) {
  await page.waitForFunction(
    (wanted) => wanted.every((text) => Array.from(
      document.querySelectorAll(".jupyter-widgets .js-plotly-plot, .widget-vbox .js-plotly-plot"),
    ).filter((gd) => (gd.querySelector(".gtitle") || { textContent: "" }).textContent.includes(text)
      && gd.querySelectorAll(".point, .hm image, .heatmaplayer image").length > 0,
    ).length >= wanted.filter((other) => other === text).length),
    texts,
    { timeout: timeoutMs, polling: 250 },
  );
}

async function runAll(page, timeoutMs) {
  await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.shell, null, {
    timeout: timeoutMs,
  });
  // Wait until the notebook's kernel is ready, then run every cell.
  await page.waitForFunction(
    () => {
      const widget = window.jupyterapp.shell.currentWidget;
      const kernel = widget && widget.sessionContext && widget.sessionContext.session
        && widget.sessionContext.session.kernel;
      return kernel && kernel.status === "idle";
    },
    null,
    { timeout: timeoutMs, polling: 250 },
  );
  await page.evaluate(() => window.jupyterapp.commands.execute("notebook:run-all-cells"));
}

// What every plotly figure on the page draws: its title and how many points.
async function figures(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll(".js-plotly-plot")).map((gd) => ({
      title: (gd.querySelector(".gtitle") || { textContent: "" }).textContent,
      points: gd.querySelectorAll(".point").length,
      widget: gd.closest(".jupyter-widgets") !== null,
    })),
  );
}

function isLocal(url) {
  return /^(https?|wss?):\/\/127\.0\.0\.1[:/]/.test(url) || url.startsWith("data:");
}

async function main() {
  const config = JSON.parse(process.argv[2]);
  const result = {
    ok: false, stage: "launch", before: "", after: "", status: "", figures: [], sliders: [],
    captions: [], consoleErrors: [], offsiteFailures: [], error: "",
  };
  const budget = config.timeoutMs || 180000;
  const killer = setTimeout(() => {
    result.error = `the whole run took longer than ${budget} ms`;
    console.log(JSON.stringify(result));
    process.exit(2);
  }, budget + 15000);
  let context = null;
  try {
    context = await chromium.launchPersistentContext(config.userDataDir, {
      executablePath: config.chromium,
      headless: true,
      args: FLAGS,
      viewport: { width: 1400, height: 1000 },
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(budget / 3);
    // The page may load nothing from outside 127.0.0.1; a failure to (Voila's
    // template asks a CDN for an icon font) is reported apart from code errors.
    const offsite = new Set();
    page.on("requestfailed", (request) => {
      if (!isLocal(request.url())) offsite.add(request.url());
    });
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      const where = (message.location() || {}).url || "";
      const loadFailure = message.text().startsWith("Failed to load resource");
      if (loadFailure && (where === "" || !isLocal(where)) && offsite.size > 0) return;
      result.consoleErrors.push(message.text().slice(0, 500));
    });
    page.on("pageerror", (error) => result.consoleErrors.push(String(error.stack || error).slice(0, 500)));
    result.stage = "open";
    await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: budget / 3 });
    if (config.mode !== "voila") {
      result.stage = "run all";
      await runAll(page, budget / 3);
    }
    if (!config.click) {
      result.stage = "wait for the page";
      await waitForText(page, config.before, budget / 3);
      await page.waitForTimeout(2000);
      result.sliders = await textOf(page, ".widget-readout");
      result.captions = await textOf(page, ".widget-html-content");
      result.figures = await figures(page);
      await page.screenshot({ path: config.screenshot, fullPage: false });
      result.offsiteFailures = Array.from(offsite);
      result.ok = true;
      result.stage = "done";
      throw null;
    }
    result.stage = "wait for the panel";
    const button = page.locator("button", { hasText: config.click }).first();
    await button.waitFor({ state: "visible", timeout: budget / 3 });
    await waitForText(page, config.before, budget / 3);
    if (config.beforeFigureTexts) {
      // a figure whose view is still being built when the click's update arrives
      // would miss it: click only once every live figure shows the first state
      result.stage = "wait for the first figures";
      await waitForFigures(page, config.beforeFigureTexts, budget / 3);
    }
    result.before = await textOf(page, ".widget-html-content h3");
    result.sliders = await textOf(page, ".widget-readout");
    result.stage = "click";
    await button.scrollIntoViewIfNeeded();
    await button.click();
    result.stage = "wait for the change";
    await waitForText(page, config.after, budget / 3);
    result.after = await textOf(page, ".widget-html-content h3");
    result.status = await textOf(page, ".widget-html-content span");
    if (config.figureTexts) {
      result.stage = "wait for the live figures";
      await waitForFigures(page, config.figureTexts, budget / 3);
    }
    result.figures = await figures(page);
    result.offsiteFailures = Array.from(offsite);
    result.stage = "screenshot";
    await page.getByRole("button", { name: "No", exact: true }).click({ timeout: 2000 }).catch(() => {});
    await page.evaluate(() => {
      const status = document.querySelectorAll(".widget-html-content span");
      const last = status[status.length - 1];
      if (last) last.scrollIntoView({ block: "start" });
    });
    await page.screenshot({ path: config.screenshot, fullPage: false });
    result.ok = true;
    result.stage = "done";
  } catch (error) {
    if (error !== null) {
      result.error = String(error && error.message ? error.message : error).slice(0, 2000);
    }
  } finally {
    if (context !== null) {
      try {
        const pages = context.pages();
        if (!result.ok && pages.length > 0) {
          await pages[0].screenshot({ path: config.screenshot }).catch(() => {});
        }
        await context.close();
      } catch (error) {
        result.error += ` (closing the browser: ${error})`;
      }
    }
    clearTimeout(killer);
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main();
