// CONDSTORE/QRESYNC interoperability with imapflow (a real Node IMAP client):
// it ENABLEs CONDSTORE and QRESYNC itself, parses HIGHESTMODSEQ, MODSEQ,
// VANISHED and VANISHED (EARLIER), and resynchronises with
// SELECT (QRESYNC (...)). Run by tests/integration/test_condstore.py:
//
//   node condstore.mjs PORT_FRONTEND_1 PORT_FRONTEND_2 USER PASSWORD
//
// Exits 0 when every check holds, else prints what failed and exits 1.
import { ImapFlow } from 'imapflow';
import assert from 'node:assert/strict';

const [port0, port1, user, pass] = process.argv.slice(2);

function client(port, qresync) {
    return new ImapFlow({
        host: '127.0.0.1',
        port: Number(port),
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass },
        logger: false,
        qresync
    });
}

function message(n) {
    return `From: a@example.com\r\nTo: b@example.com\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`;
}

function record(c) {
    const ev = { flags: [], expunge: [], exists: [] };
    c.on('flags', e => ev.flags.push(e));
    c.on('expunge', e => ev.expunge.push(e));
    c.on('exists', e => ev.exists.push(e));
    return ev;
}

async function main() {
    const a = client(port0, true);
    await a.connect();
    assert.ok(a.enabled.has('CONDSTORE') && a.enabled.has('QRESYNC'), `enabled: ${[...a.enabled]}`);
    const uids = [];
    for (let i = 0; i < 4; i++)
        uids.push((await a.append('INBOX', message(i))).uid);
    const evA = record(a);
    const mb = await a.mailboxOpen('INBOX');
    const uidValidity = mb.uidValidity;
    const h0 = mb.highestModseq;
    assert.ok(typeof h0 === 'bigint' && h0 > 0n, `HIGHESTMODSEQ ${h0}`);

    // Changes on the other frontend reach a at NOOP: FETCH with MODSEQ, VANISHED.
    const b = client(port1, false);
    await b.connect();
    await b.mailboxOpen('INBOX');
    await b.messageFlagsAdd(String(uids[1]), ['\\Flagged'], { uid: true });
    await b.messageDelete(String(uids[2]), { uid: true });
    await a.noop();
    const f = evA.flags.find(e => e.uid === uids[1]);
    assert.ok(f && f.flags.has('\\Flagged') && f.modseq > h0, `flags events ${JSON.stringify(evA.flags, (k, v) => typeof v === 'bigint' ? String(v) : v instanceof Set ? [...v] : v)}`);
    const x = evA.expunge.find(e => e.uid === uids[2]);
    assert.ok(x && x.vanished && !x.earlier, `expunge events ${JSON.stringify(evA.expunge)}`);
    assert.equal(a.mailbox.exists, 3);

    // FETCH (CHANGEDSINCE) through imapflow's own option.
    const changed = [];
    for await (const m of a.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: h0 }))
        changed.push(m.uid);
    assert.deepEqual(changed, [uids[1]]);

    const status = await a.status('INBOX', { highestModseq: true, messages: true });
    const h1 = status.highestModseq;
    assert.ok(h1 > h0 && status.messages === 3, `STATUS ${JSON.stringify(status, (k, v) => typeof v === 'bigint' ? String(v) : v)}`);
    await a.logout();

    // Offline: one flag change, one expunge, one new message.
    await b.messageFlagsAdd(String(uids[0]), ['\\Seen'], { uid: true });
    await b.messageDelete(String(uids[3]), { uid: true });
    const added = (await b.append('INBOX', message(9))).uid;
    await b.logout();

    // Quick resync: exactly those changes.
    const c = client(port0, true);
    await c.connect();
    const evC = record(c);
    const mb2 = await c.mailboxOpen('INBOX', { uidValidity, changedSince: h1 });
    assert.equal(mb2.exists, 3);
    const earlier = evC.expunge.filter(e => e.earlier).map(e => e.uid);
    assert.deepEqual(earlier, [uids[3]], `VANISHED (EARLIER) ${JSON.stringify(evC.expunge)}`);
    const fl = evC.flags.map(e => e.uid).sort((p, q) => p - q);
    assert.deepEqual(fl, [uids[0], added].sort((p, q) => p - q), `FETCH ${fl}`);
    assert.ok(evC.flags.find(e => e.uid === uids[0]).flags.has('\\Seen'));
    await c.logout();
}

main().then(() => process.exit(0), err => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
});
