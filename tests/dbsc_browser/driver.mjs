// End-to-end DBSC check with a real Chromium, driven through playwright-core.
//
//   BASE_URL=https://localhost:PORT SPKI=<base64 sha256 of the cert's SPKI> BOUND_SECS=5 \
//     node tests/dbsc_browser/driver.mjs
//
// Env: BASE_URL (required), SPKI (required), CHROMIUM (default /usr/lib/chromium/chromium),
// BOUND_SECS (bound cookie lifetime the server runs with, default 5), PROFILE_DIR (default: a
// new temp dir, removed afterwards), REGISTER_PATH (/dbsc/register), REFRESH_PATH
// (/dbsc/refresh), BOUND_COOKIE (bound cookie name; default: learned from the session's
// cookie cravings, /me's bound_cookie, or any cookie whose name contains "bound"),
// USERNAME (dbsc-e2e), STALE_CHECK (1: also replay the pre-expiry bound cookie and expect a
// rejection; 0 skips), STALE_DELAY_SECS (0: seconds to wait more before that replay),
// SIGNING_QUOTA (0: disable Chromium's 6-signings-per-9-minutes quota,
// the default; 1 keeps it), HEADLESS (1), DEBUG (1 prints every DBSC event to stderr).
//
// Prints one JSON summary line on stdout. Exit 0: every step passed; 1: a check failed;
// 2: setup error (missing env, browser launch failure).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';

const env = process.env;
const t0 = Date.now();
const ms = () => Date.now() - t0;
const sleep = (n) => new Promise((r) => setTimeout(r, n));
const debug = (...a) => { if (env.DEBUG === '1') console.error(`[${ms()}ms]`, ...a); };
const info = (...a) => console.error(`[dbsc-e2e ${ms()}ms]`, ...a);

const summary = { ok: false, registered: false, refreshed: false, refreshes: 0 };
const events = []; // Network.deviceBoundSessionEventOccurred payloads, in arrival order
function finish(code, error) {
  if (error) summary.error = error;
  summary.refreshes = events.filter((e) => e.refreshEventDetails?.refreshResult === 'Refreshed').length;
  summary.ok = code === 0;
  summary.elapsed_ms = ms();
  process.stdout.write(JSON.stringify(summary) + '\n');
  if (error) info('FAILED:', error);
  return code;
}
class Fail extends Error { constructor(msg, code = 1) { super(msg); this.code = code; } }
const check = (cond, msg) => { if (!cond) throw new Fail(msg); };

const BASE_URL = (env.BASE_URL || '').replace(/\/+$/, '');
const SPKI = env.SPKI || '';
const CHROMIUM = env.CHROMIUM || '/usr/lib/chromium/chromium';
const BOUND_SECS = Number(env.BOUND_SECS || 5);
const REGISTER_PATH = env.REGISTER_PATH || '/dbsc/register';
const REFRESH_PATH = env.REFRESH_PATH || '/dbsc/refresh';
const USERNAME = env.USERNAME || 'dbsc-e2e';
const STALE_CHECK = env.STALE_CHECK !== '0';
const STALE_DELAY_MS = Number(env.STALE_DELAY_SECS || 0) * 1000;
const WAIT_MS = 30_000; // bound for every individual wait
// Hard stop for the whole run: generous, but bounded.
const WATCHDOG_MS = 60_000 + BOUND_SECS * 1000 + STALE_DELAY_MS;

// Plain Node HTTPS GET (no browser): what a thief holding copied cookies would send.
function plainGet(url, cookieHeader) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'GET', rejectUnauthorized: false, timeout: 10_000,
      headers: { Accept: 'application/json', ...(cookieHeader ? { Cookie: cookieHeader } : {}) },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
const parseJson = (s) => { try { return JSON.parse(s); } catch { return null; } };
// A copied-cookie answer counts as refused when it is 401/403, or 200 without a bound session.
const refused = (r) => r.status === 401 || r.status === 403
  || (r.status === 200 && parseJson(r.body)?.bound !== true);

async function main() {
  if (!BASE_URL.startsWith('https://')) throw new Fail('BASE_URL must be an https:// URL', 2);
  if (!SPKI) throw new Fail('SPKI (base64 SHA-256 of the certificate SPKI) is required', 2);
  if (!fs.existsSync(CHROMIUM)) throw new Fail(`CHROMIUM not found: ${CHROMIUM}`, 2);
  if (!(BOUND_SECS > 0 && BOUND_SECS <= 60)) throw new Fail('BOUND_SECS must be in 1..60', 2);

  const ownProfile = !env.PROFILE_DIR;
  const profile = env.PROFILE_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'dbsc-e2e-'));
  const features = ['DeviceBoundSessions', 'EnableBoundSessionCredentialsSoftwareKeysForManualTesting'];
  // Chromium allows 6 DBSC signings (registration + refreshes) per site per 9 minutes; a bound
  // cookie under 120 s makes every in-scope request refresh, so the test lifts the quota.
  if (env.SIGNING_QUOTA !== '1') features[0] = 'DeviceBoundSessions:RefreshQuota/false';

  let ctx;
  try {
    try {
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: env.HEADLESS !== '0',
        timeout: WAIT_MS,
        args: [`--enable-features=${features.join(',')}`,
          `--ignore-certificate-errors-spki-list=${SPKI}`,
          '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    } catch (e) {
      throw new Fail(`cannot launch Chromium (${CHROMIUM}): ${e.message.split('\n')[0]}`, 2);
    }
    summary.browser = ctx.browser()?.version() ?? null;
    await run(ctx);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    if (ownProfile) fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function run(ctx) {
  ctx.setDefaultTimeout(WAIT_MS);
  const page = ctx.pages()[0] || await ctx.newPage();

  // DBSC events from the DevTools protocol (Network domain, experimental).
  const cdp = await ctx.newCDPSession(page);
  cdp.on('Network.deviceBoundSessionEventOccurred', (e) => {
    e.at = ms();
    events.push(e);
    debug('dbsc event', JSON.stringify(e));
  });
  await cdp.send('Network.enable');
  await cdp.send('Network.enableDeviceBoundSessions', { enable: true });
  // Chromium makes the registration and refresh POSTs itself (invisible to Playwright and to
  // CDP request events), but the offers and primed challenges on page responses are visible.
  const offers = [];
  let primed = 0;
  ctx.on('response', (r) => {
    const at = ms();
    r.allHeaders().then((h) => {
      const offer = h['secure-session-registration'];
      if (offer) {
        offers.push({ at, status: r.status(), url: new URL(r.url()).pathname, offer,
          path: /;\s*path="([^"]*)"/.exec(offer)?.[1] ?? null });
        debug('offer', r.status(), r.url(), offer);
      }
      if (h['secure-session-challenge']) primed += 1;
    }).catch(() => {});
  });
  const creations = () => events.filter((e) => e.creationEventDetails);
  const refreshOk = () => events.filter((e) => e.refreshEventDetails?.refreshResult === 'Refreshed');
  const terminations = () => events.filter((e) => e.terminationEventDetails);
  const refreshFailures = () => events.filter((e) => e.refreshEventDetails && !e.succeeded).map((e) =>
    `${e.refreshEventDetails.refreshResult}/${e.refreshEventDetails.fetchResult} ${JSON.stringify(e.refreshEventDetails.failedRequest || {})}`);
  // Polls cond() until truthy; `detail()` adds context to the timeout message.
  async function waitFor(what, cond, { timeout = WAIT_MS, every = 100, detail = () => '' } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const v = await cond();
      if (v) return v;
      if (Date.now() > end) throw new Fail(`timed out after ${timeout} ms waiting for ${what}${detail()}`);
      await sleep(every);
    }
  }
  const me = () => page.evaluate(async () => {
    const r = await fetch('/me', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    return { status: r.status, body: await r.text() };
  });
  const meJson = async () => { const r = await me(); return { ...r, json: parseJson(r.body) }; };

  // 1. Sign in through the form.
  info('open', BASE_URL + '/');
  const nav = await page.goto(BASE_URL + '/').catch((e) => {
    throw new Fail(`cannot load ${BASE_URL}/: ${e.message.split('\n')[0]}`
      + (/CERT/.test(e.message) ? ' (does SPKI match the server certificate?)' : ''));
  });
  check(nav && nav.ok(), `GET / answered ${nav?.status()}`);
  const input = page.locator('input[name=username]');
  await input.waitFor({ state: 'visible' });
  await input.fill(USERNAME);
  const tLogin = ms();
  await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/login' && r.request().method() === 'POST'),
    input.press('Enter'),
  ]).then(([r]) => {
    summary.login_status = r.status();
    check(r.status() >= 300 && r.status() < 400, `POST /login answered ${r.status()}, expected a 303 redirect`);
  });
  await page.waitForLoadState('load');
  summary.after_login_url = page.url();

  // 2. Registration: Chromium reports it as a creation event; /me must say bound.
  // Any successful creation counts: a server may refuse a second, racing registration.
  const failedCreations = () => creations().filter((e) => !e.succeeded).map((e) =>
    `${e.creationEventDetails.fetchResult} ${JSON.stringify(e.creationEventDetails.failedRequest || {})}`);
  const created = await waitFor('a successful DBSC registration (CDP creation event)',
    () => creations().find((e) => e.succeeded && e.creationEventDetails.fetchResult === 'Success'),
    { detail: () => (failedCreations().length ? `; failed registrations: ${failedCreations().join('; ')}`
      : '; no registration attempt seen (no Secure-Session-Registration offer accepted?)') });
  const cd = created.creationEventDetails;
  summary.registered = true;
  summary.registration_ms = created.at - tLogin;
  summary.registrations = creations().filter((e) => e.succeeded).length;
  summary.failed_registrations = failedCreations();
  // Offers seen up to the registration: more than one means Chromium may register twice.
  await sleep(200); // let the response-header reads settle
  summary.offers = offers.filter((o) => o.at <= created.at).map((o) => `${o.status} ${o.url}`);
  const offerPaths = [...new Set(offers.map((o) => o.path))];
  check(offerPaths.every((p) => p === null || new URL(p, BASE_URL).pathname === REGISTER_PATH),
    `offered registration path ${offerPaths.join(',')}, expected ${REGISTER_PATH}`);
  const sess = cd.newSession;
  summary.session_identifier = sess.key.id;
  summary.refresh_url = sess.refreshUrl;
  summary.scope_origin = sess.inclusionRules?.origin;
  check(new URL(sess.refreshUrl).pathname === REFRESH_PATH,
    `refresh_url is ${sess.refreshUrl}, expected path ${REFRESH_PATH}`);
  const cravings = (sess.cookieCravings || []).map((c) => c.name);
  let lastMe = null;
  const meDetail = () => (lastMe ? `; last /me: ${lastMe.status} ${lastMe.body.slice(0, 200)}` : '');
  const ended = () => terminations().filter((e) => e.sessionId === summary.session_identifier
    && e.terminationEventDetails.deletionReason !== 'Replaced');
  const meBound = async () => {
    // Fail fast once Chromium has dropped the session: no refresh can bring it back.
    if (ended().length) {
      throw new Fail(`Chromium terminated the DBSC session (${ended()[0].terminationEventDetails.deletionReason});`
        + ` refresh failures: ${refreshFailures().join('; ') || 'none'}${meDetail()}`);
    }
    lastMe = await meJson();
    return lastMe.status === 200 && lastMe.json?.bound === true ? lastMe : null;
  };
  // Every in-scope request may make Chromium refresh (bound cookie under 120 s): poll gently.
  const bound = await waitFor('/me to answer bound:true', meBound, { every: 250, detail: meDetail });
  summary.sid = bound.json.sid ?? null;
  summary.sub = bound.json.sub ?? null;
  summary.alg = bound.json.alg ?? null;
  const boundNames = new Set(env.BOUND_COOKIE ? [env.BOUND_COOKIE]
    : [...cravings, ...(bound.json.bound_cookie ? [bound.json.bound_cookie] : [])]);
  const isBound = (name) => boundNames.has(name) || (!env.BOUND_COOKIE && /bound/i.test(name));
  const cookiesNow = await ctx.cookies(BASE_URL);
  const staleBound = cookiesNow.filter((c) => isBound(c.name));
  check(staleBound.length > 0, `no bound cookie in the browser (names: ${cookiesNow.map((c) => c.name)})`);
  summary.bound_cookie = staleBound.map((c) => c.name).join(',');
  info('registered', summary.session_identifier, `in ${summary.registration_ms} ms; bound cookie`, summary.bound_cookie);

  // 3. Let the bound cookie expire, then navigate: Chromium must refresh before the request.
  // The page makes no request meanwhile, so nothing refreshes; a refresh that was still in
  // flight when the cookie was read may have renewed it once, hence the second round.
  let left = staleBound;
  for (let round = 0; round < 2 && left.length; round++) {
    const expiresAt = Math.max(...left.map((c) => c.expires * 1000));
    const waitMs = Math.min(Math.max(0, expiresAt - Date.now()) + 1000, (BOUND_SECS + 2) * 1000);
    info(`waiting ${Math.round(waitMs)} ms for the bound cookie to expire`);
    await sleep(waitMs);
    left = (await ctx.cookies(BASE_URL)).filter((c) => isBound(c.name));
  }
  const refreshesBefore = refreshOk().length;
  summary.bound_cookie_expired = left.length === 0;
  if (!summary.bound_cookie_expired) {
    throw new Fail(`the bound cookie outlived two waits of up to BOUND_SECS + 2 s (expires ${new Date(left[0].expires * 1000).toISOString()}):`
      + ` does BOUND_SECS (${BOUND_SECS}) match the server's bound cookie lifetime?`);
  }
  const tNav = ms();
  const nav2 = await page.goto(BASE_URL + '/');
  check(nav2 && nav2.ok(), `GET / after expiry answered ${nav2?.status()}`);
  const afterRefresh = await waitFor('/me to answer bound:true after expiry', meBound,
    { every: 250, detail: meDetail });
  await waitFor('a DBSC refresh event', () => refreshOk().length > refreshesBefore,
    { timeout: 5000, detail: () => `; refresh failures: ${refreshFailures().join('; ') || 'none'}` });
  const firstRefresh = refreshOk()[refreshesBefore];
  summary.refreshed = true;
  summary.refresh_ms = firstRefresh.at - tNav;
  summary.refresh_deferred = firstRefresh.refreshEventDetails.wasFullyProactiveRefresh === false;
  summary.browser_after_refresh = afterRefresh.status;
  check(afterRefresh.json?.sid === undefined || summary.sid === null || afterRefresh.json.sid === summary.sid,
    'the session id changed across the refresh');
  info('refreshed in', summary.refresh_ms, 'ms');

  // 4. Copy every cookie except the bound one into a plain HTTPS client: must be refused.
  const all = await ctx.cookies(BASE_URL);
  const copied = all.filter((c) => !isBound(c.name));
  check(copied.length > 0, 'no session cookie to copy');
  summary.copied_cookies = copied.map((c) => c.name);
  const cookieHeader = copied.map((c) => `${c.name}=${c.value}`).join('; ');
  const meUrl = BASE_URL + '/me';
  const r1 = await plainGet(meUrl, cookieHeader);
  summary.copied_cookie_status = r1.status;
  summary.copied_cookie_bound = parseJson(r1.body)?.bound ?? null;
  check(refused(r1), `copied cookies without the bound cookie were accepted: ${r1.status} ${r1.body.slice(0, 200)}`);
  if (STALE_CHECK) {
    // The bound cookie captured before it expired, replayed after its lifetime
    // (plus STALE_DELAY_SECS: the server may accept a bound cookie a few seconds
    // past its end, for clocks that disagree).
    if (STALE_DELAY_MS > 0) await sleep(STALE_DELAY_MS);
    const stale = staleBound.map((c) => `${c.name}=${c.value}`).join('; ');
    const r2 = await plainGet(meUrl, `${cookieHeader}; ${stale}`);
    summary.stale_bound_status = r2.status;
    summary.stale_bound_bound = parseJson(r2.body)?.bound ?? null;
    check(refused(r2), `copied cookies with the expired bound cookie were accepted: ${r2.status} ${r2.body.slice(0, 200)}`);
  }

  // The browser's session survives the copy attempts.
  const after = await meJson();
  summary.browser_after = after.status;
  check(after.status === 200 && after.json?.bound === true,
    `browser /me after the copy attempts answered ${after.status} ${after.body.slice(0, 200)}`);
  summary.refresh_failures = refreshFailures();
  summary.primed_challenges = primed;
  summary.terminations = terminations().map((e) => e.terminationEventDetails.deletionReason);
  check(!ended().length, 'the DBSC session was terminated');
}

const watchdog = setTimeout(() => {
  process.exitCode = finish(1, `watchdog: run exceeded ${WATCHDOG_MS} ms`);
  process.exit();
}, WATCHDOG_MS);
let code;
try {
  await main();
  code = finish(0);
} catch (e) {
  if (!(e instanceof Fail)) console.error(e.stack || String(e));
  code = finish(e instanceof Fail ? e.code : 1,
    e instanceof Fail ? e.message : String(e.message || e).split('\n')[0]);
}
clearTimeout(watchdog);
process.exit(code);
