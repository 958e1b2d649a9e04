// The small harness under tests/js/imapflow_suite.mjs: how a case gets its
// clients, how a check is recorded, and the one JSON line per check and per
// case that tests/integration/test_js_imapflow.py reads.
//
// Output protocol (stdout, one JSON object per line, nothing else):
//   {"case": NAME, "check": WHAT, "ok": true}              a check that held
//   {"case": NAME, "check": WHAT, "ok": false, "detail": S} the one that failed
//   {"case": NAME, "result": "pass"|"fail", "checks": N, "error": S, "ms": T}
// The first failed check ends the case: later checks build on earlier state.
import { ImapFlow } from 'imapflow';
import { isDeepStrictEqual } from 'node:util';
import { readFileSync } from 'node:fs';

// JSON for values imapflow returns: BigInt modseqs, Sets of flags, Maps of
// UIDs and Buffers would otherwise throw or print as {}.
export function show(value) {
    return JSON.stringify(value, (k, v) => {
        if (typeof v === 'bigint') return `${v}n`;
        if (v instanceof Set) return [...v];
        if (v instanceof Map) return Object.fromEntries(v);
        if (v && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data).toString('latin1');
        return v;
    });
}

export class CheckFailed extends Error {}

// One case's context: the cluster it talks to, its account, its checks and
// every client it opened (closed at the end whatever happened).
export class Case {
    constructor(name, config) {
        this.name = name;
        this.config = config;
        this.checks = 0;
        this.clients = [];
        this.ca = config.ca ? readFileSync(config.ca) : undefined;
    }

    emit(obj) {
        process.stdout.write(JSON.stringify({ case: this.name, ...obj }) + '\n');
    }

    ok(what, cond, detail) {
        this.checks++;
        if (!cond) {
            const d = typeof detail === 'function' ? detail() : detail;
            this.emit({ check: what, ok: false, detail: d === undefined ? '' : String(d) });
            throw new CheckFailed(`${what}: ${d === undefined ? 'false' : d}`);
        }
        this.emit({ check: what, ok: true });
    }

    eq(what, actual, expected) {
        this.ok(what, isDeepStrictEqual(actual, expected),
            () => `got ${show(actual)}, expected ${show(expected)}`);
    }

    // Expects the promise to reject; returns the error for further checks.
    async rejects(what, promise) {
        try {
            const v = await promise;
            this.ok(what, false, `resolved with ${show(v)}`);
        } catch (err) {
            if (err instanceof CheckFailed) throw err;
            this.ok(what, true);
            return err;
        }
    }

    // An ImapFlow on frontend `frontend` (0 or 1). tls: 'none' (cleartext, no
    // STARTTLS even if offered), 'starttls' (required), 'implicit' (IMAPS).
    // trustCa false: the client does not know the cluster's CA. Every other
    // option goes to ImapFlow as is.
    client({ frontend = 0, tls = 'none', trustCa = true, user, pass, ...options } = {}) {
        const cfg = this.config;
        const implicit = tls === 'implicit';
        const c = new ImapFlow({
            host: '127.0.0.1',
            port: (implicit ? cfg.imaps : cfg.imap)[frontend],
            secure: implicit,
            doSTARTTLS: tls === 'starttls' ? true : tls === 'implicit' ? undefined : false,
            // The test certificate is for localhost and IP:127.0.0.1, signed by
            // the cluster's own CA: verification stays on.
            tls: { ca: trustCa ? this.ca : undefined, servername: 'localhost', rejectUnauthorized: true },
            auth: { user: user ?? cfg.user, pass: pass ?? cfg.pass },
            logger: false,
            // Auto-IDLE would start IDLE between a case's own commands.
            disableAutoIdle: true,
            ...options
        });
        // An 'error' event without a listener would kill the process; record it.
        c.on('error', err => { c.lastError = err; });
        this.clients.push(c);
        return c;
    }

    async connect(options) {
        const c = this.client(options);
        await c.connect();
        return c;
    }

    async closeAll() {
        for (const c of this.clients) {
            if (c.usable) {
                try { await c.logout(); } catch { c.close(); }
            } else {
                c.close();
            }
        }
    }
}

// Resolves when pred() holds, polling every few milliseconds; rejects after
// `ms` with `what` so a missing IDLE event fails fast and says what it awaited.
export async function until(what, pred, ms = 10000) {
    const end = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > end) throw new CheckFailed(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise(r => setTimeout(r, 5));
    }
}

// Deterministic pseudo-random numbers (mulberry32), so a failing run repeats.
export function prng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

// A message of a few header lines and a body, CRLF throughout.
export function message({ subject = 'test', from = 'alice@example.com', to = 'bob@example.com',
    date = 'Mon, 2 Mar 2026 10:00:00 +0000', body = 'hello\r\n', headers = '' } = {}) {
    return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${date}\r\n` +
        `Message-ID: <${subject.replace(/\W/g, '')}.${Math.random().toString(36).slice(2)}@example.com>\r\n` +
        `${headers}\r\n${body}`;
}

export async function collect(iterable) {
    const out = [];
    for await (const x of iterable) out.push(x);
    return out;
}

// Runs one case and prints its result line; returns true when it passed.
export async function runCase(name, fn, config) {
    const t = new Case(name, config);
    const start = Date.now();
    let error = null;
    try {
        await fn(t);
    } catch (err) {
        error = err instanceof CheckFailed ? err.message
            : `${err && err.stack ? err.stack : err}` +
              (err && err.responseText ? ` (server: ${err.responseText})` : '');
    }
    try { await t.closeAll(); } catch { /* the case's result stands */ }
    t.emit({ result: error ? 'fail' : 'pass', checks: t.checks, error, ms: Date.now() - start });
    return !error;
}
