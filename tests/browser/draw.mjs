// draw.mjs URL OUTDIR: the page of `nabla serve` at URL in Debian's
// chromium, as a person would use it.  On a laptop-sized window it draws a
// pair of trousers with the mouse, clicks Predict, and checks the answer,
// the activations, the kernels, the run's curves and (when the server has a
// test set) the confusion matrix; on a phone-sized one it draws with a
// finger and waits for the prediction made while drawing.  Writes
// OUTDIR/drawn.png (the PNG the page sent), OUTDIR/page.png and
// OUTDIR/phone.png (screenshots), prints {"class", "label", "phone_class"}
// as JSON; on any failure one line on stderr saying what, and exit 1.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, outdir] = process.argv.slice(2);
if (!url || !outdir) {
  console.error('usage: node draw.mjs URL OUTDIR');
  process.exit(2);
}
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// step(what, fn): fn's result; a failure names what was being done.
async function step(what, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${what}: ${String(e.message || e).split('\n')[0]}`);
  }
}

// A page at url whose script errors, failed requests and API errors are
// collected in page.problems.
async function open(browser, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`script error: ${e.message}`));
  page.on('requestfailed', (r) => page.problems.push(`request failed: ${r.url()}`));
  await step(`open ${url}`, () => page.goto(url));
  await step('wait for /api/model on the page',
    () => page.waitForFunction(() => document.getElementById('model-name').textContent !== '', null, { timeout: 15000 }));
  return page;
}

async function checkClean(page, where) {
  const status = await page.$eval('#status', (s) => (s.classList.contains('error') ? s.textContent : ''));
  if (status) page.problems.push(`the status line says: ${status}`);
  if (page.problems.length) throw new Error(`${where}: ${page.problems[0]}`);
}

// Strokes as lists of [x, y] in the pad's 280 x 280 CSS pixels.
const trousers = [
  [[88, 40], [192, 40]],                 // the waistband
  [[92, 40], [80, 236]], [[116, 48], [112, 236]], [[80, 236], [112, 236]],   // the left leg
  [[188, 40], [200, 236]], [[164, 48], [168, 236]], [[168, 236], [200, 236]], // the right leg
  [[140, 44], [140, 96]],                // the fly
  [[100, 60], [100, 220]], [[180, 60], [184, 220]],   // filling the legs
];
const seven = [[[80, 60], [200, 60], [120, 240]]];

async function padBox(page) {
  const box = await page.$eval('#pad', (p) => {
    p.scrollIntoView({ block: 'center' });
    const r = p.getBoundingClientRect();
    return { x: r.left, y: r.top, scale: r.width / 280 };
  });
  return ([x, y]) => [box.x + x * box.scale, box.y + y * box.scale];
}

async function drawWithMouse(page, strokes) {
  const at = await padBox(page);
  for (const points of strokes) {
    await page.mouse.move(...at(points[0]));
    await page.mouse.down();
    for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 12 });
    await page.mouse.up();
  }
}

// Real touches, through the DevTools protocol: the page sees pointer
// events of pointerType "touch", and would scroll without touch-action.
async function drawWithFinger(page, strokes) {
  const at = await padBox(page);
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, p) => cdp.send('Input.dispatchTouchEvent',
    { type, touchPoints: p ? [{ x: at(p)[0], y: at(p)[1] }] : [] });
  for (const points of strokes) {
    await touch('touchStart', points[0]);
    for (let i = 1; i < points.length; i++)
      for (let k = 1; k <= 12; k++) {
        const [x0, y0] = points[i - 1], [x1, y1] = points[i];
        await touch('touchMove', [x0 + (x1 - x0) * k / 12, y0 + (y1 - y0) * k / 12]);
      }
    await touch('touchEnd', null);
  }
}

const prediction = (page) => page.$eval('#result', (r) => ({
  class: Number(r.dataset.class),
  label: document.getElementById('label').textContent,
}));

// Pixels of a canvas that are not its background (the top-left pixel's colour).
const inked = (page, selector) => page.$$eval(selector, (cs) => cs.map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) n++;
  return n;
}));

async function laptop(browser) {
  const page = await open(browser, { viewport: { width: 1280, height: 900 } });
  const model = await page.evaluate(() => fetch('/api/model').then((r) => r.json()));
  await step('draw with the mouse', () => drawWithMouse(page, trousers));
  await page.click('#predict');
  await step('wait for #result[data-class]', () => page.waitForSelector('#result[data-class]', { timeout: 30000 }));
  const answer = await prediction(page);
  if (!Number.isInteger(answer.class) || !answer.label) throw new Error(`bad prediction on the page: ${JSON.stringify(answer)}`);
  const png = await page.evaluate(() => window.nablaLastPng);
  if (!png || !png.startsWith('data:image/png;base64,')) throw new Error('window.nablaLastPng holds no PNG');
  writeFileSync(join(outdir, 'drawn.png'), Buffer.from(png.split(',')[1], 'base64'));

  const bars = await page.$$eval('#bars .bar', (b) => b.length);
  if (bars !== model.classes.length) throw new Error(`#bars has ${bars} bars for ${model.classes.length} classes`);
  const seen = await inked(page, '#input-view');
  if (!(seen[0] > 20)) throw new Error('#input-view shows nothing');

  await step('wait for the activations',
    () => page.waitForSelector('#activations[data-layers] figure canvas', { timeout: 30000 }));
  const activations = await inked(page, '#activations canvas');
  if (!activations.every((n) => n > 0)) throw new Error(`an activation grid is blank: ${activations}`);
  const captions = await page.$$eval('#activations figcaption', (f) => f.map((e) => e.textContent));
  if (!/^\S+ \(\S+\) \[\d+, \d+, \d+\]$/.test(captions[0] || '')) throw new Error(`activation caption: "${captions[0]}"`);
  await step('wait for the kernels', () => page.waitForSelector('#kernels canvas', { timeout: 15000 }));
  if (!((await inked(page, '#kernels canvas'))[0] > 0)) throw new Error('the kernels are blank');

  if (model.run) {
    await step('wait for the run\'s curves', () => page.waitForFunction(
      () => Number(document.getElementById('curves').dataset.rows) > 0, null, { timeout: 15000 }));
    const charts = await inked(page, '#curves canvas');
    if (charts.length !== 2 || !charts.every((n) => n > 500)) throw new Error(`the curves are not drawn: ${charts}`);
  }
  if (model.test) {
    await step('wait for the confusion matrix', () => page.waitForSelector('#confusion table', { timeout: 60000 }));
    const rows = await page.$$eval('#confusion tr', (r) => r.length);
    if (rows !== model.classes.length + 1) throw new Error(`the confusion matrix has ${rows - 1} rows`);
  }
  await checkClean(page, 'on a laptop');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(outdir, 'page.png'), fullPage: true });
  await page.context().close();
  return answer;
}

async function phone(browser) {
  const page = await open(browser, {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true,
  });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) throw new Error(`on a phone the page is ${wide} px wide, wider than the screen`);
  const scrolled = await page.evaluate(() => window.scrollY);
  await step('draw with a finger', () => drawWithFinger(page, seven));
  // No tap on Predict: the prediction made while drawing must arrive.
  await step('wait for the prediction of the finger\'s drawing',
    () => page.waitForSelector('#result[data-class]', { timeout: 30000 }));
  const answer = await prediction(page);
  const after = await page.evaluate(() => window.scrollY);
  if (after !== scrolled) throw new Error(`drawing with a finger scrolled the page (${scrolled} to ${after})`);
  // The button itself, not a tap: the click a tap makes is not always
  // delivered by the emulated touch screen.
  await page.click('#reset');
  await step('#reset should remove data-class from #result',
    () => page.waitForSelector('#result[data-class]', { state: 'detached', timeout: 30000 }));
  await drawWithFinger(page, seven);
  await page.waitForSelector('#result[data-class]', { timeout: 30000 });
  await checkClean(page, 'on a phone');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(outdir, 'phone.png'), fullPage: true, scale: 'css' });   // 390 px wide
  await page.context().close();
  return answer;
}

let browser;
try {
  browser = await step(`launch ${chromiumPath}`,
    () => chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] }));
  const a = await laptop(browser);
  const p = await phone(browser);
  console.log(JSON.stringify({ class: a.class, label: a.label, phone_class: p.class }));
  await browser.close();
} catch (e) {
  console.error(`draw.mjs: ${e.message.split('\n')[0]}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
