// Test support: the chat server on its own databases, Chromium, waiting helpers, and steps
// that build on each other. What a test does on a page is in pages.js.
'use strict';

const { test } = require('node:test');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(REPO, 'test-artifacts');
const SCREENSHOTS = path.join(ARTIFACTS, 'screenshots');
const TIMEOUT = 10_000;

const CHROMIUM = process.env.CHAT_TEST_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function serverBinary() {
  const target = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'chat-target');
  return path.resolve(REPO, target, 'debug', 'chat-server');
}

const mysqlBase = () => (process.env.CHAT_TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306').replace(/\/+$/, '');

/**
 * The chat server on port 0 (or `port`), with its own MySQL database, MongoDB database and
 * Redis prefix. Its log goes to test-artifacts/browser-server.log.
 */
class Server {
  /** `logName`: the log's file name under test-artifacts/ (one per test file). */
  constructor(logName = 'browser-server.log') {
    this.name = `chat_test_browser_${crypto.randomBytes(5).toString('hex')}`;
    this.proc = null;
    this.port = null;
    this.logFile = path.join(ARTIFACTS, logName);
    this.log = [];
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(this.logFile, '');
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  env(port) {
    const env = {
      ...process.env,
      CHAT__SERVER__PORT: String(port),
      CHAT__SERVER__WORKERS: '1',
      CHAT__LOG__DIR: '',
      CHAT__MYSQL__URL: `${mysqlBase()}/${this.name}`,
      CHAT__MONGO__DATABASE: this.name,
      CHAT__REDIS__KEY_PREFIX: this.name,
    };
    if (process.env.CHAT_TEST_REDIS_URL) env.CHAT__REDIS__URL = process.env.CHAT_TEST_REDIS_URL;
    if (process.env.CHAT_TEST_MONGO_URL) env.CHAT__MONGO__URL = process.env.CHAT_TEST_MONGO_URL;
    delete env.APP_ENV;
    return env;
  }

  /** Starts the server; resolves once it listens (on `port`, else a free one). */
  start(port = 0) {
    const bin = serverBinary();
    if (!fs.existsSync(bin)) {
      throw new Error(`${bin} is missing: build it with \`cargo build -p chat-server\``);
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const proc = spawn(bin, ['--config', path.join(REPO, 'config')], {
      cwd: REPO,
      env: this.env(port),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    // never leave a server behind, whatever ends this process
    const reap = () => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.removeListener('exit', reap));
    return new Promise((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => {
        reject(new Error(`the server did not listen within 30 s; its log:\n${this.log.slice(-30).join('\n')}`));
      }, 30_000);
      const onData = (chunk) => {
        buffered += chunk.toString('utf8');
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.log.push(line);
          fs.appendFileSync(this.logFile, line + '\n');
          const m = /listening, addr: 127\.0\.0\.1:(\d+)/.exec(line);
          if (m) {
            clearTimeout(timer);
            this.port = Number(m[1]);
            resolve(this.port);
          }
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before listening:\n${this.log.slice(-30).join('\n')}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after 15 s; resolves when the process is gone. */
  stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  /** Best effort: drop the MySQL database, the MongoDB database and the Redis keys. */
  async cleanUp() {
    try {
      const { MongoClient } = require('mongodb');
      const mongo = new MongoClient(process.env.CHAT_TEST_MONGO_URL || 'mongodb://127.0.0.1:27017', {
        serverSelectionTimeoutMS: 5_000,
      });
      await mongo.db(this.name).dropDatabase();
      await mongo.close();
    } catch {
      // best effort, like the rest
    }
    const m = /^mysql:\/\/([^:@/]+)(?::([^@/]*))?@([^:/]+)(?::(\d+))?/.exec(mysqlBase());
    const client = ['mariadb', 'mysql'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
    if (m && client) {
      spawnSync(
        client,
        ['--protocol=tcp', '-u', m[1], '-h', m[3], '-P', m[4] || '3306', '-e', `DROP DATABASE IF EXISTS \`${this.name}\``],
        { env: { ...process.env, MYSQL_PWD: m[2] ? decodeURIComponent(m[2]) : '' }, stdio: 'ignore', timeout: 15_000 },
      );
    }
    if (spawnSync('sh', ['-c', 'command -v redis-cli']).status === 0) {
      const url = process.env.CHAT_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
      const keys = spawnSync('redis-cli', ['-u', url, '--scan', '--pattern', `${this.name}:*`], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      const list = (keys.stdout || '').split('\n').filter(Boolean);
      for (let i = 0; i < list.length; i += 200) {
        spawnSync('redis-cli', ['-u', url, 'DEL', ...list.slice(i, i + 200)], { stdio: 'ignore', timeout: 15_000 });
      }
    }
  }

  /** A JSON request straight to the server: {status, body}. */
  async http(method, route, body, token) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.base + route, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }
}

/** Chromium, headless; launch() gives it a fresh temporary user-data directory, removed at close. */
function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * A context (an isolated profile: own cookies and storage) with one page. Page errors, dialogs
 * and console errors are collected so a test can assert there were none.
 */
async function openPage(browser, base, options = {}) {
  const context = await browser.newContext({ baseURL: base, ...options });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const problems = { pageErrors: [], dialogs: [], consoleErrors: [] };
  page.on('pageerror', (e) => problems.pageErrors.push(String(e)));
  page.on('dialog', (d) => {
    problems.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // expected: a 401/404 answered to a request (session checks, lookups), sockets to a stopped server
    if (/Failed to load resource|WebSocket connection to .* failed/.test(text)) return;
    problems.consoleErrors.push(text);
  });
  return { context, page, problems };
}

/** Polls `fn` until it returns something truthy; fails after `timeout` ms naming `what`. */
async function until(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the locator's attribute equals `value`. */
function attrIs(locator, name, value, timeout = TIMEOUT) {
  let seen;
  return until(
    `${locator} [${name}="${value}"]`,
    async () => {
      seen = await locator.getAttribute(name, { timeout: 1000 });
      return seen === value;
    },
    timeout,
  ).catch((e) => {
    throw new Error(`${e.message}; it was ${JSON.stringify(seen)}`);
  });
}

/**
 * Empties test-artifacts/screenshots/ so it holds this run's pictures only; with `prefix`, only
 * the pictures whose names start with it (another test file's stay).
 */
function clearScreenshots(prefix) {
  if (!prefix) fs.rmSync(SCREENSHOTS, { recursive: true, force: true });
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  if (prefix) {
    for (const f of fs.readdirSync(SCREENSHOTS)) if (f.startsWith(prefix)) fs.rmSync(path.join(SCREENSHOTS, f), { force: true });
  }
}

async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * `step(name, fn)`: a test whose steps build on each other. After a failure the rest are
 * skipped, and what each page showed is kept as test-artifacts/screenshots/<prefix>failed-<who>.png.
 * `pages()`: [[who, {page}]…] (a page not open yet is skipped).
 */
function steps({ pages, prefix = '', timeout = 60_000 }) {
  let failed = null;
  return (name, fn) =>
    test(name, { timeout }, async (t) => {
      if (failed) {
        t.skip(`an earlier step failed: ${failed}`);
        return;
      }
      try {
        await fn();
      } catch (e) {
        failed = name;
        for (const [who, p] of pages()) {
          if (p) await screenshot(p.page, `${prefix}failed-${who}`).catch(() => {});
        }
        throw e;
      }
    });
}

module.exports = {
  Server,
  launchBrowser,
  openPage,
  until,
  attrIs,
  screenshot,
  clearScreenshots,
  steps,
  REPO,
  TIMEOUT,
};
