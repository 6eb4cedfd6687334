// End-to-end test of postamt's web pages in a real headless browser (Debian's Chromium,
// driven by playwright-core). Started by crates/postamt/tests/browser.rs against a running
// server:
//
//   node tests/browser/run.mjs <base-url> --imaps HOST:PORT --user ADDRESS --password PW
//        --recovery ADDRESS --recovery-password PW --admin ADDRESS --admin-password PW
//        --screenshots DIR
//
// It logs in, changes the password, creates an app password and uses it over IMAP, sets a
// recovery address, logs out, resets the password through the link mailed to the recovery
// mailbox (read over IMAP), and logs in with the new password; it saves screenshots of the
// main pages on the way. Prints "N passed, M failed" and exits non-zero on any failure.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function parseArgs(argv) {
  const [base, ...rest] = argv;
  const opts = { base };
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--') || rest[i + 1] === undefined) throw new Error(`bad argument ${rest[i]}`);
    opts[rest[i].slice(2)] = rest[i + 1];
  }
  for (const key of ['base', 'imaps', 'user', 'password', 'recovery', 'recovery-password', 'screenshots']) {
    if (!opts[key]) throw new Error(`missing --${key}`);
  }
  return opts;
}

// ---- a minimal IMAP client (implicit TLS) ----

class Imap {
  static connect(hostport) {
    const [host, port] = hostport.split(':');
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host, port: Number(port), rejectUnauthorized: false }, () => {});
      const imap = new Imap(socket);
      socket.once('error', reject);
      imap.waitFor((buf) => buf.includes('\r\n')).then(() => resolve(imap), reject);
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = '';
    this.waiters = [];
    this.tag = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      this.buf += d;
      this.waiters = this.waiters.filter((w) => !w());
    });
  }

  waitFor(done) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`IMAP timeout; got: ${this.buf.slice(-500)}`)), 20000);
      const check = () => {
        if (!done(this.buf)) return false;
        clearTimeout(timer);
        const out = this.buf;
        this.buf = '';
        resolve(out);
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  async command(text) {
    const tag = `T${++this.tag}`;
    this.socket.write(`${tag} ${text}\r\n`);
    const out = await this.waitFor((buf) => buf.startsWith(`${tag} `) || buf.includes(`\r\n${tag} `));
    const last = out.slice(out.lastIndexOf(`${tag} `));
    return { out, ok: last.startsWith(`${tag} OK`) };
  }

  close() {
    this.socket.end();
  }
}

const quote = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

async function imapLogin(hostport, user, password) {
  const imap = await Imap.connect(hostport);
  const { ok } = await imap.command(`LOGIN ${quote(user)} ${quote(password)}`);
  if (ok) await imap.command('LOGOUT');
  imap.close();
  return ok;
}

/// Waits for a mail with a reset link in `user`'s INBOX; returns the link's path.
async function resetLinkFromMailbox(hostport, user, password) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const imap = await Imap.connect(hostport);
    const login = await imap.command(`LOGIN ${quote(user)} ${quote(password)}`);
    if (!login.ok) throw new Error(`cannot log in to the recovery mailbox: ${login.out}`);
    await imap.command('SELECT INBOX');
    const { out } = await imap.command('FETCH 1:* (BODY.PEEK[TEXT])');
    await imap.command('LOGOUT');
    imap.close();
    const links = [...out.matchAll(/https?:\/\/[^\s/]+(\/reset\/[A-Za-z0-9_-]{43})/g)];
    if (links.length > 0) return links[links.length - 1][1];
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('no reset mail arrived in the recovery mailbox');
}

// ---- the test ----

const results = [];
async function step(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok - ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAILED - ${name}: ${e && e.stack ? e.stack : e}`);
    throw e;
  }
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { chromium } = await import('playwright-core');
  fs.mkdirSync(opts.screenshots, { recursive: true });
  const shot = (page, name, fullPage = true) => page.screenshot({ path: path.join(opts.screenshots, `${name}.png`), fullPage });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'postamt-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
    // The server's certificate is self-signed.
    ignoreHTTPSErrors: true,
    viewport: { width: 1000, height: 800 },
    locale: 'en-US',
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  const base = opts.base;
  const changed = 'changed in the browser';
  const reset = 'reset in the browser';
  let appPassword;
  const menu = (name) => page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name, exact: true });

  try {
    await step('log in', async () => {
      await page.goto(`${base}/`);
      expect(page.url().endsWith('/login'), `not sent to the login: ${page.url()}`);
      await shot(page, 'login');
      await page.getByLabel('Mail address').fill(opts.user);
      await page.getByLabel('Password').fill(opts.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL('**/settings');
      await page.getByRole('heading', { name: 'Mail client settings' }).waitFor();
      const text = await page.locator('main').innerText();
      expect(text.includes('SSL/TLS') && text.includes(opts.user), 'settings page incomplete');
      await shot(page, 'settings');
    });

    await step('switch the language', async () => {
      await page.getByRole('link', { name: 'Deutsch' }).click();
      await page.getByRole('heading', { name: 'Einstellungen für Mailprogramme' }).waitFor();
      await shot(page, 'settings-de');
      await page.getByRole('link', { name: 'English' }).click();
      await page.getByRole('heading', { name: 'Mail client settings' }).waitFor();
    });

    await step('settings on a phone-sized screen', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      expect(!overflow, 'the page scrolls sideways on a phone');
      await shot(page, 'settings-phone');
      await page.setViewportSize({ width: 1000, height: 800 });
    });

    await step('change the password', async () => {
      await menu('Password').click();
      await page.getByLabel('Current password').fill(opts.password);
      await page.getByLabel('New password', { exact: true }).fill(changed);
      await page.getByLabel('New password again').fill(changed);
      await shot(page, 'password');
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByText('Your password is changed.').waitFor();
      expect(!(await imapLogin(opts.imaps, opts.user, opts.password)), 'the old password still works over IMAP');
      expect(await imapLogin(opts.imaps, opts.user, changed), 'the new password does not work over IMAP');
    });

    await step('create an app password and use it over IMAP', async () => {
      await menu('App passwords').click();
      await page.getByLabel('Name').fill('Browser test');
      await page.getByRole('button', { name: 'Create' }).click();
      appPassword = (await page.locator('#new-app-password').innerText()).trim();
      expect(/^([a-z2-9]{4}-){5}[a-z2-9]{4}$/.test(appPassword), `unexpected app password ${appPassword}`);
      await shot(page, 'app-passwords');
      expect(await imapLogin(opts.imaps, opts.user, appPassword), 'the app password does not work over IMAP');
      await page.reload();
      const table = await page.locator('table').innerText();
      expect(table.includes('Browser test') && !table.includes(appPassword), 'list shows the password or misses it');
    });

    await step('set the recovery address', async () => {
      await menu('Account').click();
      await page.getByLabel('Recovery address').fill(opts.recovery);
      await page.getByLabel('Current password').fill(changed);
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('The recovery address is saved.').waitFor();
      await shot(page, 'account');
    });

    await step('log out', async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByText('You are logged out.').waitFor();
      await page.goto(`${base}/settings`);
      expect(page.url().includes('/login'), 'still signed in after logging out');
    });

    await step('reset the password through the mailed link', async () => {
      await page.goto(`${base}/login`);
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.getByLabel('Mail address').fill(opts.user);
      await page.getByRole('button', { name: 'Send link' }).click();
      await page.getByText('If this address has an account').waitFor();
      await shot(page, 'forgot');
      const link = await resetLinkFromMailbox(opts.imaps, opts.recovery, opts['recovery-password']);
      await page.goto(`${base}${link}`);
      await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
      await page.getByLabel('New password', { exact: true }).fill(reset);
      await page.getByLabel('New password again').fill(reset);
      await shot(page, 'reset');
      await page.getByRole('button', { name: 'Set password' }).click();
      await page.getByText('Your new password is set.').waitFor();
      expect(!(await imapLogin(opts.imaps, opts.user, changed)), 'the replaced password still works');
      // The link is used up.
      await page.goto(`${base}${link}`);
      await page.getByText('This link is not valid').waitFor();
    });

    await step('log in with the new password', async () => {
      await page.goto(`${base}/login`);
      await page.getByLabel('Mail address').fill(opts.user);
      await page.getByLabel('Password').fill(reset);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL('**/settings');
      expect(await imapLogin(opts.imaps, opts.user, reset), 'the reset password does not work over IMAP');
      expect(await imapLogin(opts.imaps, opts.user, appPassword), 'the app password stopped working');
    });

    if (opts.admin) {
      await step('administration pages', async () => {
        await page.getByRole('button', { name: 'Log out' }).click();
        await page.getByLabel('Mail address').fill(opts.admin);
        await page.getByLabel('Password').fill(opts['admin-password']);
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.waitForURL('**/settings');
        await menu('Administration').click();
        await page.getByRole('heading', { name: 'Accounts' }).waitFor();
        expect((await page.locator('table').innerText()).includes(opts.user), 'account list misses the user');
        await shot(page, 'admin-accounts');
        await page.getByRole('link', { name: 'Domains' }).click();
        await page.locator('table a').first().click();
        await page.getByRole('heading', { name: /DNS records for/ }).waitFor();
        await shot(page, 'admin-dns');
      });
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  if (results.length === 0) console.log(`FAILED - setup: ${e && e.stack ? e.stack : e}`);
}
const passed = results.filter(([, ok]) => ok).length;
console.log(`${passed} passed, ${results.length - passed + (failed && results.every(([, ok]) => ok) ? 1 : 0)} failed`);
process.exit(failed ? 1 : 0);
