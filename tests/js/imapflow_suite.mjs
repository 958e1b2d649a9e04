// Petrel driven by imapflow, a real IMAP client with its own parser, through
// its own API (no raw commands). Run by tests/integration/test_js_imapflow.py,
// one process per case so each case is one pytest result:
//
//   node imapflow_suite.mjs CASE CONFIG_JSON     runs one case
//   node imapflow_suite.mjs --list               prints the case names
//
// CONFIG_JSON: {"imap": [P1, P2], "imaps": [P1, P2], "ca": PATH, "user": U,
// "pass": P, "user2": U2, "pass2": P2}: fresh accounts per case, the second
// with a password that needs quoting. Output: see harness.mjs. Exit 0 when
// the case passed.
//
// Capability-aware where other work changes what imapflow does: with BINARY
// advertised, download() uses BINARY.PEEK and gets decoded bytes either way;
// with IMAP4rev2 it ENABLEs it and gets ESEARCH for every SEARCH.
import { runCase, show, until, prng, message, collect } from './harness.mjs';

const cases = {};
function test(name, fn) { cases[name] = fn; }

function sorted(list) { return [...list].sort((a, b) => a - b); }

// Flags as a sorted list, without \Recent: it is per session (RFC 3501 2.3.2),
// so two devices disagree about it by design (Petrel sets it on none).
function flagList(flags) { return [...flags].filter(f => f !== '\\Recent').sort(); }

// Removes from `uids` (a list in sequence order) the messages that a run of
// EXPUNGE responses names, each relative to the state the previous left, and
// returns the removed UIDs: servers may expunge a set in any order (Petrel
// ascending, Dovecot descending), what counts is which messages go.
function applyExpunges(uids, seqs) {
    const removed = [];
    for (const seq of seqs) removed.push(...uids.splice(seq - 1, 1));
    return removed;
}

// ---- connections and authentication ----------------------------------------

test('starttls', async t => {
    const c = await t.connect({ tls: 'starttls' });
    t.ok('socket is TLS after STARTTLS', c.secureConnection === true && c.socket.encrypted === true,
        () => `secureConnection=${c.secureConnection}`);
    t.ok('certificate verified against the cluster CA', c.socket.authorized === true,
        () => c.socket.authorizationError);
    t.ok('STARTTLS gone from the capabilities after the upgrade', !c.capabilities.has('STARTTLS'),
        () => show(c.capabilities));
    t.ok('TLS 1.2 or 1.3', /^TLSv1\.[23]$/.test(c.socket.getProtocol()), () => c.socket.getProtocol());
    t.ok('authenticated', !!c.authenticated, () => show(c.authenticated));
    const mb = await c.mailboxOpen('INBOX');
    t.eq('INBOX opens over STARTTLS', mb.path, 'INBOX');
});

test('implicit_tls', async t => {
    const c = await t.connect({ tls: 'implicit' });
    t.ok('socket is TLS from the start', c.secureConnection === true && c.socket.authorized === true,
        () => `secure=${c.secureConnection} authorized=${c.socket.authorized}`);
    t.ok('no STARTTLS on an implicit-TLS listener', !c.capabilities.has('STARTTLS'),
        () => show(c.capabilities));
    t.ok('authenticated', !!c.authenticated, () => show(c.authenticated));
    // A client that does not trust the cluster's CA must not get in.
    const bad = t.client({ frontend: 1, tls: 'implicit', trustCa: false });
    await t.rejects('an unknown CA is refused by the client', bad.connect());
});

test('auth_plain_and_login', async t => {
    // imapflow prefers SASL PLAIN when AUTH=PLAIN is advertised.
    const p = await t.connect();
    t.ok('AUTHENTICATE PLAIN chosen by capability', p.authCapabilities.get('AUTH=PLAIN') === true,
        () => show(p.authCapabilities));
    t.ok('authenticated', !!p.authenticated);
    // loginMethod LOGIN forces the LOGIN command.
    const l = await t.connect({ frontend: 1, auth: { user: t.config.user, pass: t.config.pass, loginMethod: 'LOGIN' } });
    t.ok('LOGIN command used, no SASL', l.authCapabilities.get('LOGIN') === true
        && !l.authCapabilities.get('AUTH=PLAIN'), () => show(l.authCapabilities));
    t.ok('LOGIN authenticated', !!l.authenticated);
    // SASL LOGIN as well.
    const sl = await t.connect({ auth: { user: t.config.user, pass: t.config.pass, loginMethod: 'AUTH=LOGIN' } });
    t.ok('AUTHENTICATE LOGIN used', sl.authCapabilities.get('AUTH=LOGIN') === true, () => show(sl.authCapabilities));
    // A password with space, quote, backslash, braces and UTF-8: imapflow
    // quotes it or sends a literal for LOGIN, and UTF-8 bytes in SASL.
    const { user2, pass2 } = t.config;
    for (const loginMethod of ['LOGIN', 'AUTH=PLAIN', 'AUTH=LOGIN']) {
        const x = await t.connect({ frontend: 1, auth: { user: user2, pass: pass2, loginMethod } });
        t.ok(`${loginMethod} with ${JSON.stringify(pass2)}`, !!x.authenticated);
        await x.logout();
    }
    // RFC 4616: an authorization identity equal to the authenticated one is
    // that user; another one (no proxy rights exist) is refused.
    const self = await t.connect({ auth: { user: user2, pass: pass2, loginMethod: 'AUTH=PLAIN', authzid: user2 } });
    t.ok('PLAIN with authzid = the user', !!self.authenticated);
    const other = t.client({ auth: { user: user2, pass: pass2, loginMethod: 'AUTH=PLAIN', authzid: t.config.user } });
    const denied = await t.rejects('PLAIN with another authzid refused', other.connect());
    t.eq('as an authentication failure', denied.authenticationFailed, true);
    // A wrong password: imapflow reports an authentication failure, the server
    // answers NO [AUTHENTICATIONFAILED] (loopback is throttle-exempt).
    const bad = t.client({ pass: 'wrong-' + t.config.pass });
    const err = await t.rejects('wrong password refused', bad.connect());
    t.ok('reported as an authentication failure', err.authenticationFailed === true,
        () => `${err.message} ${err.serverResponseCode}`);
    t.eq('with AUTHENTICATIONFAILED', err.serverResponseCode, 'AUTHENTICATIONFAILED');
});

test('id_namespace', async t => {
    const c = await t.connect({ clientInfo: { name: 'petrel-imapflow-suite', version: '1' } });
    t.ok('server answered ID with its name', c.serverInfo && typeof c.serverInfo.name === 'string'
        && c.serverInfo.name.length > 0, () => show(c.serverInfo));
    t.ok('NAMESPACE parsed: a personal namespace', c.namespaces && c.namespaces.personal.length === 1,
        () => show(c.namespaces));
    const ns = c.namespace;
    t.eq('personal namespace: empty prefix, "/" delimiter', { prefix: ns.prefix, delimiter: ns.delimiter },
        { prefix: '', delimiter: '/' });
});

// ---- mailboxes -------------------------------------------------------------

test('list_special_use_status', async t => {
    const c = await t.connect();
    await c.append('INBOX', message({ subject: 'one' }));
    await c.append('INBOX', message({ subject: 'two' }), ['\\Seen']);
    t.ok('LIST-STATUS advertised', c.capabilities.has('LIST-STATUS') && c.capabilities.has('SPECIAL-USE'));
    const list = await c.list({ statusQuery: { messages: true, unseen: true, uidNext: true, highestModseq: true } });
    const byPath = Object.fromEntries(list.map(m => [m.path, m]));
    t.eq('default mailboxes listed', Object.keys(byPath).sort(),
        ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    for (const [path, use] of [['Drafts', '\\Drafts'], ['Sent', '\\Sent'], ['Trash', '\\Trash'],
        ['Junk', '\\Junk'], ['Archive', '\\Archive']]) {
        t.eq(`${path} is ${use} from the server (SPECIAL-USE)`,
            [byPath[path].specialUse, byPath[path].specialUseSource], [use, 'extension']);
    }
    t.eq('INBOX special use', byPath.INBOX.specialUse, '\\Inbox');
    const st = byPath.INBOX.status;
    t.ok('LIST-STATUS gives INBOX status', st && st.messages === 2 && st.unseen === 1 && st.uidNext === 3,
        () => show(st));
    t.ok('LIST-STATUS HIGHESTMODSEQ', typeof st.highestModseq === 'bigint' && st.highestModseq > 0n, () => show(st));
    t.eq('empty Sent by LIST-STATUS', byPath.Sent.status.messages, 0);
    t.ok('default mailboxes subscribed', list.every(m => m.subscribed), () => show(list.map(m => [m.path, m.subscribed])));

    // listTree builds the hierarchy from the delimiter and \HasChildren.
    await c.mailboxCreate(['Projects', 'Petrel']);
    const tree = await c.listTree();
    const projects = tree.folders.find(f => f.path === 'Projects');
    t.ok('listTree nests Projects/Petrel', projects && projects.folders.length === 1
        && projects.folders[0].path === 'Projects/Petrel', () => show(tree.folders.map(f => f.path)));
    t.ok('parent flagged \\HasChildren', projects.flags.has('\\HasChildren'), () => show(projects.flags));
});

test('mailbox_lifecycle', async t => {
    const c = await t.connect();
    const created = await c.mailboxCreate('Lists');
    t.eq('mailboxCreate', [created.path, created.created], ['Lists', true]);
    const again = await c.mailboxCreate('Lists');
    t.eq('creating it again is not an error ([ALREADYEXISTS])', again.created, false);
    const nested = await c.mailboxCreate(['Lists', 'ietf', 'imap']);
    t.eq('nested create by path array', nested.path, 'Lists/ietf/imap');
    const utf = await c.mailboxCreate('Entwürfe ☃');
    t.eq('non-ASCII name round-trips (modified UTF-7, or UTF-8 with UTF8=ACCEPT)', utf.path, 'Entwürfe ☃');
    const listed = (await c.list()).map(m => m.path);
    t.ok('all listed', ['Lists', 'Lists/ietf', 'Lists/ietf/imap', 'Entwürfe ☃'].every(p => listed.includes(p)),
        () => show(listed));

    await c.append('Lists/ietf/imap', message({ subject: 'kept through rename' }));
    const before = await c.status('Lists/ietf/imap', { uidValidity: true, messages: true });
    const renamed = await c.mailboxRename('Lists', 'Archive/Lists');
    t.eq('mailboxRename', [renamed.path, renamed.newPath], ['Lists', 'Archive/Lists']);
    const after = (await c.list()).map(m => m.path);
    t.ok('children moved with the parent', after.includes('Archive/Lists/ietf/imap') && !after.includes('Lists')
        && !after.includes('Lists/ietf/imap'), () => show(after));
    const moved = await c.status('Archive/Lists/ietf/imap', { uidValidity: true, messages: true });
    t.eq('messages and UIDVALIDITY kept by the rename', moved, { ...before, path: 'Archive/Lists/ietf/imap' });

    await c.mailboxSubscribe('Entwürfe ☃');
    let subs = (await c.list()).filter(m => m.subscribed).map(m => m.path);
    t.ok('mailboxSubscribe', subs.includes('Entwürfe ☃'), () => show(subs));
    await c.mailboxUnsubscribe('Entwürfe ☃');
    subs = (await c.list()).filter(m => m.subscribed).map(m => m.path);
    t.ok('mailboxUnsubscribe', !subs.includes('Entwürfe ☃'), () => show(subs));

    // RFC 3501 6.3.5: renaming INBOX moves its messages to the new name and
    // leaves INBOX, empty, in place; INBOX's children are not renamed.
    await c.append('INBOX', message({ subject: 'in inbox' }));
    await c.mailboxCreate(['INBOX', 'Kid']);
    await c.mailboxRename('INBOX', 'Old Inbox');
    const inbox = await c.status('INBOX', { messages: true });
    const old = await c.status('Old Inbox', { messages: true });
    t.eq('RENAME INBOX moved its messages and left it empty', [inbox.messages, old.messages], [0, 1]);
    t.ok('INBOX\'s children stay', (await c.list()).some(m => m.path === 'INBOX/Kid'));
    // RFC 3501 6.3.4 lets a server delete it and keep a \Noselect name;
    // Petrel refuses with [HASCHILDREN] as Dovecot does.
    const kids = await t.rejects('deleting a mailbox with children refused', c.mailboxDelete('Archive/Lists'));
    t.ok('with [HASCHILDREN]', show(kids.response).includes('HASCHILDREN'), () => show(kids.response));

    const del = await c.mailboxDelete('Entwürfe ☃');
    t.eq('mailboxDelete', del.path, 'Entwürfe ☃');
    t.ok('gone from LIST', !(await c.list()).some(m => m.path === 'Entwürfe ☃'));
    await t.rejects('deleting INBOX refused', c.mailboxDelete('INBOX'));
    await t.rejects('renaming onto an existing mailbox refused', c.mailboxRename('Sent', 'Trash'));
    await t.rejects('opening a missing mailbox refused', c.mailboxOpen('No/Such/Box'));
});

test('status', async t => {
    const c = await t.connect();
    const sizes = [];
    for (const [i, flags] of [[0, []], [1, ['\\Seen']], [2, ['\\Deleted']]]) {
        const m = message({ subject: `s${i}`, body: 'x'.repeat(100 * (i + 1)) + '\r\n' });
        sizes.push(Buffer.byteLength(m));
        await c.append('INBOX', m, flags);
    }
    const st = await c.status('INBOX', { messages: true, recent: true, uidNext: true, uidValidity: true,
        unseen: true, highestModseq: true, size: true });
    t.eq('MESSAGES', st.messages, 3);
    t.eq('UIDNEXT', st.uidNext, 4);
    t.eq('UNSEEN', st.unseen, 2);
    t.ok('UIDVALIDITY', typeof st.uidValidity === 'bigint' && st.uidValidity > 0n, () => show(st));
    t.ok('HIGHESTMODSEQ', typeof st.highestModseq === 'bigint' && st.highestModseq > 0n, () => show(st));
    t.eq('SIZE (RFC 8438) is the sum of the RFC822.SIZEs', st.size, sizes.reduce((a, b) => a + b));
    await c.mailboxOpen('INBOX');
    await c.messageFlagsAdd('1', ['\\Flagged']);
    const st2 = await c.status('INBOX', { highestModseq: true });
    t.ok('a STORE raises HIGHESTMODSEQ', st2.highestModseq > st.highestModseq, () => show([st, st2]));
    const empty = await c.status('Junk', { messages: true, size: true, unseen: true });
    t.eq('empty mailbox', [empty.messages, empty.size, empty.unseen], [0, 0, 0]);
    const err = await t.rejects('status of a missing mailbox refused', c.status('Nope', { messages: true }));
    t.ok('with [NONEXISTENT]', err.code === 'NotFound' && show(err.response).includes('NONEXISTENT'),
        () => show(err.response));
});

test('open_and_lock', async t => {
    const c = await t.connect({ qresync: true });
    t.ok('CONDSTORE and QRESYNC enabled by imapflow', c.enabled.has('CONDSTORE') && c.enabled.has('QRESYNC'),
        () => show(c.enabled));
    await c.append('INBOX', message({ subject: 'a' }));
    const mb = await c.mailboxOpen('INBOX');
    t.eq('SELECT: exists and uidNext', [mb.exists, mb.uidNext], [1, 2]);
    t.ok('SELECT: HIGHESTMODSEQ', typeof mb.highestModseq === 'bigint' && mb.highestModseq > 0n, () => show(mb));
    t.ok('SELECT: read-write with \\* in PERMANENTFLAGS', mb.readOnly === false && mb.permanentFlags.has('\\*'),
        () => show(mb));
    t.ok('SELECT: flags', ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'].every(f => mb.flags.has(f)),
        () => show(mb.flags));
    const ro = await c.mailboxOpen('INBOX', { readOnly: true });
    t.eq('EXAMINE is read-only', ro.readOnly, true);
    await t.rejects('STORE refused in EXAMINE', c.messageFlagsAdd('1', ['\\Seen']).then(ok => {
        if (!ok) throw new Error('refused');
        return ok;
    }));
    await c.mailboxClose();
    t.ok('mailboxClose leaves no mailbox', !c.mailbox, () => show(c.mailbox));

    // getMailboxLock serialises users of one connection; the lock opens the mailbox.
    const lock = await c.getMailboxLock('Sent');
    t.eq('lock opens the mailbox', c.mailbox.path, 'Sent');
    let second = false;
    const waiting = c.getMailboxLock('INBOX').then(l => { second = true; return l; });
    await new Promise(r => setTimeout(r, 50));
    t.ok('second lock waits for the first', !second);
    lock.release();
    const lock2 = await waiting;
    t.eq('second lock opened INBOX', c.mailbox.path, 'INBOX');
    lock2.release();
});

// ---- messages ----------------------------------------------------------------

const MULTIPART = [
    'From: "Alice Example" <alice@example.com>',
    'To: bob@example.com, "Carol" <carol@example.org>',
    'Cc: dave@example.net',
    'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= with attachment',
    'Date: Tue, 3 Mar 2026 09:30:00 +0100',
    'Message-ID: <multi.1@example.com>',
    'In-Reply-To: <parent.0@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    'preamble',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Hello B=C3=B6b,',
    'see attached.',
    '--b1',
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Disposition: attachment; filename="data.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from([...Array(300).keys()].map(i => i % 256)).toString('base64').replace(/.{76}/g, '$&\r\n'),
    '--b1--',
    ''
].join('\r\n');
const ATTACHMENT = Buffer.from([...Array(300).keys()].map(i => i % 256));

test('append_fetch', async t => {
    const c = await t.connect();
    const idate = new Date('2026-02-01T12:34:56Z');
    const r = await c.append('INBOX', MULTIPART, ['\\Seen', '$Work'], idate);
    t.ok('APPENDUID gives uid and uidValidity', r.uid === 1 && typeof r.uidValidity === 'bigint', () => show(r));
    const r2 = await c.append('INBOX', message({ subject: 'plain' }));
    t.eq('second APPENDUID', r2.uid, 2);
    const mb = await c.mailboxOpen('INBOX');
    t.eq('uidValidity agrees with SELECT', r.uidValidity, mb.uidValidity);

    const msgs = await collect(c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true,
        internalDate: true, size: true, source: true, headers: ['subject', 'in-reply-to'] }));
    t.eq('fetch returns both, in order', msgs.map(m => [m.seq, m.uid]), [[1, 1], [2, 2]]);
    const m = msgs[0];
    t.eq('flags', m.flags, new Set(['\\Seen', '$Work']));
    t.eq('size is RFC822.SIZE', m.size, Buffer.byteLength(MULTIPART));
    t.ok('source is the message byte for byte', m.source.equals(Buffer.from(MULTIPART)));
    t.eq('internalDate from APPEND', new Date(m.internalDate).toISOString(), idate.toISOString());
    const e = m.envelope;
    t.eq('envelope subject decoded', e.subject, 'Grüße with attachment');
    t.eq('envelope from', e.from, [{ name: 'Alice Example', address: 'alice@example.com' }]);
    t.eq('envelope to', e.to, [{ name: '', address: 'bob@example.com' }, { name: 'Carol', address: 'carol@example.org' }]);
    t.eq('envelope cc', e.cc, [{ name: '', address: 'dave@example.net' }]);
    t.eq('envelope ids', [e.messageId, e.inReplyTo], ['<multi.1@example.com>', '<parent.0@example.com>']);
    t.eq('envelope date', new Date(e.date).toISOString(), '2026-03-03T08:30:00.000Z');
    const bs = m.bodyStructure;
    t.eq('bodyStructure root', [bs.type, bs.parameters.boundary], ['multipart/mixed', 'b1']);
    t.eq('bodyStructure parts', bs.childNodes.map(p => [p.part, p.type, p.encoding]),
        [['1', 'text/plain', 'quoted-printable'], ['2', 'application/octet-stream', 'base64']]);
    t.eq('text part charset', bs.childNodes[0].parameters.charset, 'utf-8');
    t.eq('attachment disposition', [bs.childNodes[1].disposition, bs.childNodes[1].dispositionParameters.filename],
        ['attachment', 'data.bin']);
    t.eq('headers: the fields asked for',
        m.headers.toString().replace(/\r\n$/, ''),
        'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= with attachment\r\nIn-Reply-To: <parent.0@example.com>\r\n');

    const one = await c.fetchOne('2', { uid: true, envelope: true, bodyParts: ['1', 'TEXT'] });
    t.eq('fetchOne by sequence number', [one.uid, one.envelope.subject], [2, 'plain']);
    t.eq('fetchOne bodyParts TEXT', one.bodyParts.get('text').toString(), 'hello\r\n');

    const parts = await c.fetchOne('1', { bodyParts: ['1', '2.mime', 'header'] }, { uid: true });
    t.eq('bodyParts 1 is the raw QP text', parts.bodyParts.get('1').toString(), 'Hello B=C3=B6b,\r\nsee attached.');
    t.ok('bodyParts 2.MIME is the part header', /^Content-Type: application\/octet-stream; name="data.bin"\r\n/
        .test(parts.bodyParts.get('2.mime').toString()), () => parts.bodyParts.get('2.mime').toString());
    // imapflow files BODY[HEADER] under `headers`.
    t.ok('bodyParts HEADER ends with the blank line', parts.headers.toString().endsWith('boundary="b1"\r\n\r\n'),
        () => show(parts.headers.toString()));

    const partial = await c.fetchOne('1', { source: { start: 6, maxLength: 15 } }, { uid: true });
    t.eq('partial source <6.15>', partial.source.toString(), MULTIPART.slice(6, 21));
    const after = await c.fetchOne('1', { flags: true }, { uid: true });
    t.ok('fetching BODY.PEEK leaves \\Seen as it was', after.flags.has('\\Seen'));
    const unseen = await c.fetchOne('2', { flags: true }, { uid: true });
    t.ok('imapflow peeks: message 2 still unseen', !unseen.flags.has('\\Seen'), () => show(unseen.flags));
    t.eq('fetchOne of a missing UID is false', await c.fetchOne('99', { uid: true }, { uid: true }), false);
});

test('download', async t => {
    const c = await t.connect();
    await c.append('INBOX', MULTIPART);
    await c.mailboxOpen('INBOX');
    // BINARY advertised: imapflow asks BINARY.PEEK[2] and the server decodes;
    // otherwise it fetches BODY.PEEK[2] and decodes base64 itself.
    const d = await c.download('1', '2', { uid: true });
    const bytes = Buffer.concat(await collect(d.content));
    t.ok('attachment bytes decoded', bytes.equals(ATTACHMENT), () => `${bytes.length} bytes: ${bytes.toString('hex').slice(0, 40)}`);
    t.eq('download meta', [d.meta.contentType, d.meta.filename], ['application/octet-stream', 'data.bin']);
    const text = await c.download('1', '1', { uid: true });
    const body = Buffer.concat(await collect(text.content)).toString();
    t.eq('text part decoded from QP and charset', body, 'Hello Böb,\r\nsee attached.');
    const whole = await c.download('1', undefined, { uid: true });
    const all = Buffer.concat(await collect(whole.content));
    t.ok('whole message', all.equals(Buffer.from(MULTIPART)), () => `${all.length} vs ${MULTIPART.length}`);
    const many = await c.downloadMany('1', ['1', '2'], { uid: true });
    t.ok('downloadMany', many['2'] && many['2'].content.equals(ATTACHMENT), () => show(Object.keys(many)));
});

test('search', async t => {
    const c = await t.connect();
    const msgs = [
        { subject: 'invoice march', from: 'billing@shop.example', body: 'total 42 EUR\r\n', flags: ['\\Seen'], date: '2026-01-05T10:00:00Z', hdr: 'Date: Mon, 5 Jan 2026 10:00:00 +0000' },
        { subject: 'meeting notes', from: 'alice@example.com', body: 'agenda: petrel release\r\n', flags: ['\\Flagged'], date: '2026-02-10T10:00:00Z', hdr: 'Date: Tue, 10 Feb 2026 10:00:00 +0000' },
        { subject: 'Re: meeting notes', from: 'bob@example.com', body: 'x'.repeat(5000) + '\r\n', flags: ['$Important'], date: '2026-03-15T10:00:00Z', hdr: 'Date: Sun, 15 Mar 2026 10:00:00 +0000' },
        { subject: 'newsletter', from: 'news@list.example', body: 'unsubscribe here\r\n', flags: ['\\Seen', '\\Answered'], date: '2026-03-20T10:00:00Z', hdr: 'Date: Fri, 20 Mar 2026 10:00:00 +0000', extra: 'List-Id: <news.list.example>\r\n' }
    ];
    for (const m of msgs) {
        const raw = `From: ${m.from}\r\nTo: me@example.com\r\nSubject: ${m.subject}\r\n${m.hdr}\r\n${m.extra || ''}\r\n${m.body}`;
        await c.append('INBOX', raw, m.flags, new Date(m.date));
    }
    await c.mailboxOpen('INBOX');
    const s = async (q, o = { uid: true }) => {
        const r = await c.search(q, o);
        return Array.isArray(r) ? sorted(r) : r;
    };
    t.eq('all', await s({ all: true }), [1, 2, 3, 4]);
    t.eq('seen', await s({ seen: true }), [1, 4]);
    t.eq('unseen', await s({ seen: false }), [2, 3]);
    t.eq('flagged', await s({ flagged: true }), [2]);
    t.eq('answered', await s({ answered: true }), [4]);
    t.eq('keyword', await s({ keyword: '$Important' }), [3]);
    t.eq('unkeyword', await s({ unKeyword: '$Important' }), [1, 2, 4]);
    t.eq('from', await s({ from: 'alice' }), [2]);
    t.eq('to', await s({ to: 'me@example.com' }), [1, 2, 3, 4]);
    t.eq('subject, case-insensitive', await s({ subject: 'MEETING' }), [2, 3]);
    t.eq('body', await s({ body: 'petrel' }), [2]);
    t.eq('text (headers and body)', await s({ text: 'shop.example' }), [1]);
    t.eq('header', await s({ header: { 'list-id': 'news.list' } }), [4]);
    t.eq('header present', await s({ header: { 'list-id': true } }), [4]);
    t.eq('larger', await s({ larger: 4000 }), [3]);
    t.eq('smaller', await s({ smaller: 4000 }), [1, 2, 4]);
    t.eq('since (internal date)', await s({ since: new Date('2026-03-01T00:00:00Z') }), [3, 4]);
    t.eq('before (internal date)', await s({ before: new Date('2026-02-10T00:00:00Z') }), [1]);
    t.eq('on (internal date)', await s({ on: new Date('2026-02-10T00:00:00Z') }), [2]);
    t.eq('sentSince (Date header)', await s({ sentSince: new Date('2026-03-16T00:00:00Z') }), [4]);
    t.eq('sentBefore (Date header)', await s({ sentBefore: new Date('2026-02-01T00:00:00Z') }), [1]);
    t.eq('uid range', await s({ uid: '2:3' }), [2, 3]);
    t.eq('or', await s({ or: [{ flagged: true }, { answered: true }] }), [2, 4]);
    t.eq('not', await s({ not: { seen: true } }), [2, 3]);
    t.eq('and of several keys', await s({ seen: false, subject: 'notes', larger: 4000 }), [3]);
    t.eq('sequence numbers without uid option', await s({ flagged: true }, {}), [2]);
    t.eq('nothing matches', await s({ subject: 'no such subject anywhere' }), []);
    const st = await c.status('INBOX', { highestModseq: true });
    await c.messageFlagsAdd({ uid: '1' }, ['$Done']);
    t.eq('modseq (CONDSTORE)', await s({ modseq: st.highestModseq + 1n }), [1]);

    // Non-ASCII: imapflow sends SEARCH CHARSET UTF-8 with literals; the
    // server decodes RFC 2047 words and the 8-bit body before comparing.
    await c.append('INBOX', 'From: =?UTF-8?Q?J=C3=B6rg?= <j@example.com>\r\nSubject: =?UTF-8?B?S8Okc2UgdW5kIEJyb3Q=?=\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n');
    t.eq('UTF-8 body', await s({ body: 'grüße aus' }), [5]);
    t.eq('UTF-8 body, case-insensitive', await s({ body: 'KÖLN' }), [5]);
    t.eq('UTF-8 subject from an encoded word, case folded', await s({ subject: 'KÄSE' }), [5]);
    t.eq('UTF-8 from display name', await s({ from: 'jörg' }), [5]);
    t.ok('ESEARCH advertised', c.capabilities.has('ESEARCH'));
    const es = await c.search({ seen: false }, { uid: true, returnOptions: ['min', 'max', 'count', 'all'] });
    t.eq('ESEARCH MIN MAX COUNT ALL', [es.min, es.max, es.count, es.all], [2, 5, 3, '2:3,5']);
    const ec = await c.search({ all: true }, { returnOptions: ['count'] });
    t.eq('ESEARCH COUNT alone', [ec.count, ec.all], [5, undefined]);
    const none = await c.search({ subject: 'zzz-none' }, { uid: true, returnOptions: ['min', 'count'] });
    t.eq('ESEARCH with no match: COUNT 0, no MIN', [none.count, none.min], [0, undefined]);
});

test('flags', async t => {
    const c = await t.connect();
    for (let i = 0; i < 4; i++) await c.append('INBOX', message({ subject: `f${i}` }));
    await c.mailboxOpen('INBOX');
    const flags = async () => (await collect(c.fetch('1:*', { uid: true, flags: true })))
        .map(m => [m.uid, flagList(m.flags)]);
    t.ok('messageFlagsAdd', await c.messageFlagsAdd('1:2', ['\\Seen', '$Label1']));
    t.ok('messageFlagsAdd by uid', await c.messageFlagsAdd('3', ['\\Flagged'], { uid: true }));
    t.eq('after add', await flags(), [[1, ['$Label1', '\\Seen']], [2, ['$Label1', '\\Seen']], [3, ['\\Flagged']], [4, []]]);
    t.ok('messageFlagsRemove', await c.messageFlagsRemove('2', ['$Label1']));
    t.ok('messageFlagsSet', await c.messageFlagsSet('3:4', ['\\Answered', '\\Draft']));
    t.eq('after remove and set', await flags(), [[1, ['$Label1', '\\Seen']], [2, ['\\Seen']], [3, ['\\Answered', '\\Draft']], [4, ['\\Answered', '\\Draft']]]);
    t.ok('PERMANENTFLAGS lists the new keyword', c.mailbox.permanentFlags.has('\\*'));
    t.ok('setFlagColor (Apple colour bits)', await c.setFlagColor('1', 'red'));
    const red = await c.fetchOne('1', { flags: true });
    t.eq('colour read back', red.flagColor, 'red');

    // UNCHANGEDSINCE: a stale modseq changes nothing (imapflow then reports false).
    const m4 = await c.fetchOne('4', { flags: true });
    await c.messageFlagsAdd('4', ['$Other']);
    const res = await c.messageFlagsAdd('4', ['\\Seen'], { unchangedSince: m4.modseq });
    const now = await c.fetchOne('4', { flags: true });
    t.ok('UNCHANGEDSINCE with a stale modseq leaves the flags', !now.flags.has('\\Seen'), () => show([res, now.flags]));
    t.ok('UNCHANGEDSINCE with the current modseq applies',
        await c.messageFlagsAdd('4', ['\\Seen'], { unchangedSince: now.modseq })
        && (await c.fetchOne('4', { flags: true })).flags.has('\\Seen'));
});

test('copy_move_delete', async t => {
    const c = await t.connect();
    for (let i = 0; i < 6; i++) await c.append('INBOX', message({ subject: `c${i}` }), i === 0 ? ['\\Flagged'] : []);
    await c.mailboxCreate('Dest');
    await c.append('Dest', message({ subject: 'already there' }));
    await c.mailboxOpen('INBOX');
    const cp = await c.messageCopy('1:2', 'Dest');
    const dest = await c.status('Dest', { uidValidity: true, messages: true });
    t.eq('COPYUID maps source to new UIDs', cp.uidMap, new Map([[1, 2], [2, 3]]));
    t.eq('COPYUID uidValidity is the destination\'s', cp.uidValidity, dest.uidValidity);
    t.eq('copies in Dest', dest.messages, 3);
    t.eq('INBOX unchanged by COPY', c.mailbox.exists, 6);

    const expunged = [];
    c.on('expunge', e => expunged.push(e));
    const mv = await c.messageMove('4:5', 'Dest', { uid: true });
    t.eq('MOVE gives COPYUID', mv.uidMap, new Map([[4, 4], [5, 5]]));
    t.eq('MOVE expunges the sources', sorted(applyExpunges([1, 2, 3, 4, 5, 6], expunged.map(e => e.seq))), [4, 5]);
    t.eq('exists after MOVE', c.mailbox.exists, 4);
    await c.mailboxOpen('Dest');
    const copy = await c.fetchOne('2', { flags: true, envelope: true }, { uid: true });
    t.eq('the copy of UID 1 kept its flag', [copy.envelope.subject, flagList(copy.flags)], ['c0', ['\\Flagged']]);

    await c.mailboxOpen('INBOX');
    expunged.length = 0;
    // UIDPLUS: imapflow flags \Deleted and runs UID EXPUNGE on exactly that set,
    // so another \Deleted message survives.
    await c.messageFlagsAdd('2', ['\\Deleted'], { uid: true });
    t.ok('messageDelete', await c.messageDelete('6', { uid: true }));
    t.eq('UID EXPUNGE removed only UID 6', expunged.map(e => e.seq), [4]);
    const left = (await collect(c.fetch('1:*', { uid: true }))).map(m => m.uid);
    t.eq('other \\Deleted message kept', left, [1, 2, 3]);
    t.ok('messageDelete by sequence', await c.messageDelete('1:2'));
    t.eq('left', (await collect(c.fetch('1:*', { uid: true }))).map(m => m.uid), [3]);
    t.eq('MOVE to a missing mailbox fails', await c.messageMove('1', 'No Such'), false);
    t.eq('and leaves the message', c.mailbox.exists, 1);
});

// ---- several devices ----------------------------------------------------------

function recorder(c) {
    const log = [];
    c.on('exists', e => log.push({ ev: 'exists', count: e.count, prev: e.prevCount }));
    c.on('expunge', e => log.push({ ev: 'expunge', seq: e.seq, uid: e.uid, vanished: e.vanished, earlier: !!e.earlier }));
    c.on('flags', e => log.push({ ev: 'flags', seq: e.seq, uid: e.uid, flags: flagList(e.flags), modseq: e.modseq }));
    return log;
}

// A client's picture of its selected mailbox, kept only from the events it
// receives, in their order (RFC 3501 7.4.1: each EXPUNGE renumbers what
// follows; EXISTS announces new messages, learnt by fetching them). drain()
// applies the recorded events and checks each is possible.
async function mirror(t, c, log) {
    const model = (await collect(c.fetch('1:*', { uid: true, flags: true })))
        .map(m => ({ uid: m.uid, flags: flagList(m.flags) }));
    const drain = async () => {
        while (log.length) {
            const e = log.shift();
            if (e.ev === 'expunge') {
                t.ok(`expunge seq ${e.seq} within 1..${model.length}`, e.seq >= 1 && e.seq <= model.length);
                model.splice(e.seq - 1, 1);
            } else if (e.ev === 'flags') {
                const m = model[e.seq - 1];
                // A message announced by EXISTS is known by its UID once one names it.
                t.ok(`flags seq ${e.seq} names a known message`,
                    m && (e.uid === undefined || m.uid === null || e.uid === m.uid), () => show([e, model]));
                if (m.uid === null && e.uid !== undefined) m.uid = e.uid;
                m.flags = e.flags;
            } else if (e.ev === 'exists') {
                t.ok(`EXISTS ${e.count} follows the expunges before it`, e.prev === model.length,
                    () => show([e, model.length]));
                while (model.length < e.count) model.push({ uid: null, flags: null });
            }
        }
        const first = model.findIndex(m => m.uid === null);
        if (first >= 0) {
            const got = await collect(c.fetch(`${first + 1}:*`, { uid: true, flags: true }));
            for (const g of got) model[g.seq - 1] = { uid: g.uid, flags: flagList(g.flags) };
        }
    };
    return { model, drain };
}

test('idle_events', async t => {
    const a = await t.connect({ frontend: 0 });
    const b = await t.connect({ frontend: 1 });
    for (let i = 0; i < 3; i++) await b.append('INBOX', message({ subject: `i${i}` }));
    await a.mailboxOpen('INBOX');
    await b.mailboxOpen('INBOX');
    const log = recorder(a);
    const idling = a.idle();
    await until('IDLE on A', () => a.idling);

    const { uid } = await b.append('INBOX', message({ subject: 'new' }));
    await until('exists on A', () => log.some(e => e.ev === 'exists'));
    t.eq('exists from the other frontend', log.shift(), { ev: 'exists', count: 4, prev: 3 });
    await b.messageFlagsAdd(String(uid), ['\\Flagged'], { uid: true });
    await until('flags on A', () => log.some(e => e.ev === 'flags'));
    const f = log.shift();
    t.eq('flags event: seq and flags', [f.seq, f.flags], [4, ['\\Flagged']]);
    await b.messageDelete('2', { uid: true });
    await until('expunge on A', () => log.some(e => e.ev === 'expunge'));
    // messageDelete is STORE +FLAGS \Deleted then UID EXPUNGE: A may see the
    // flag change before the expunge, if its resync fell between the two.
    if (log[0].ev === 'flags')
        t.eq('\\Deleted seen before the expunge', [log[0].seq, log.shift().flags], [2, ['\\Deleted']]);
    t.eq('expunge event with its sequence number', log.shift(), { ev: 'expunge', seq: 2, uid: undefined, vanished: false, earlier: false });
    t.eq('no stray events', log, []);
    t.ok('still idling', a.idling);
    // Ending IDLE: the next command ends it with DONE.
    const uids = (await collect(a.fetch('1:*', { uid: true }))).map(m => m.uid);
    t.eq('A\'s view after the changes', uids, [1, 3, uid]);
    await idling;
});

// With QRESYNC enabled the same changes arrive as the RFC 7162 forms:
// VANISHED (not EXPUNGE) with the UID, FETCH with UID and MODSEQ.
test('idle_events_qresync', async t => {
    const a = await t.connect({ frontend: 0, qresync: true });
    const b = await t.connect({ frontend: 1 });
    for (let i = 0; i < 3; i++) await b.append('INBOX', message({ subject: `q${i}` }));
    const h0 = (await a.mailboxOpen('INBOX')).highestModseq;
    await b.mailboxOpen('INBOX');
    const log = recorder(a);
    a.idle();
    await until('IDLE on A', () => a.idling);
    await b.messageFlagsAdd('3', ['$Seen2'], { uid: true });
    await until('flags on A', () => log.length > 0);
    const f = log.shift();
    t.ok('FETCH carries UID and a MODSEQ above the SELECT\'s HIGHESTMODSEQ',
        f.ev === 'flags' && f.seq === 3 && f.uid === 3 && f.modseq > h0, () => show(f));
    await b.messageDelete('1:2', { uid: true });
    await until('VANISHED on A', () => log.filter(e => e.ev === 'expunge').length === 2);
    const gone = log.filter(e => e.ev === 'expunge');
    t.eq('VANISHED names the UIDs, not EARLIER', gone.map(e => [e.uid, e.vanished, e.earlier]),
        [[1, true, false], [2, true, false]]);
    t.eq('A has one message left', a.mailbox.exists, 1);
    const [m] = await collect(a.fetch('1:*', { uid: true, flags: true }));
    t.eq('the survivor is UID 3 with its flag', [m.seq, m.uid, flagList(m.flags)], [1, 3, ['$Seen2']]);
});

// B renames the mailbox A has open: A stays on the same mailbox and still
// gets its changes. RFC 3501 leaves this open; Dovecot 2.3 (maildir) ends
// the session with "BYE IMAP session state is inconsistent", a consequence
// of its storage, while Petrel selects by mailbox id and can keep the
// session valid, which costs the client nothing. B deletes it: A gets BYE
// (as from Dovecot), and imapflow closes.
test('selected_renamed_deleted', async t => {
    const a = await t.connect({ frontend: 0 });
    const b = await t.connect({ frontend: 1 });
    await b.mailboxCreate('Old');
    await b.append('Old', message({ subject: 'r0' }));
    await a.mailboxOpen('Old');
    const log = recorder(a);
    let closed = false;
    a.on('close', () => { closed = true; });
    a.idle();
    await until('IDLE on A', () => a.idling);
    await b.mailboxRename('Old', 'New');
    await b.append('New', message({ subject: 'r1' }));
    await until('EXISTS after the rename', () => log.length > 0);
    t.eq('A sees the append to the renamed mailbox', log.shift(), { ev: 'exists', count: 2, prev: 1 });
    await b.mailboxDelete('New');
    await until('A closed', () => closed);
    t.ok('A was told with BYE, not left on a mailbox that is gone', closed && !a.usable);
    t.eq('no other event', log, []);
});

// A message over the RPC chunk size (256 KiB) goes through the streamed
// APPEND and FETCH paths; partial fetches across chunk boundaries must be
// exact.
test('large_message', async t => {
    const c = await t.connect();
    const line = i => `line ${String(i).padStart(7, '0')} ${'abcdefghij'.repeat(6)}\r\n`;
    let body = '';
    for (let i = 0; body.length < 3 * 1024 * 1024; i++) body += line(i);
    const raw = message({ subject: 'big', body });
    const r = await c.append('INBOX', raw);
    t.eq('APPENDUID for 3 MB', r.uid, 1);
    await c.mailboxOpen('INBOX');
    const m = await c.fetchOne('1', { size: true, source: true }, { uid: true });
    t.eq('RFC822.SIZE', m.size, raw.length);
    t.ok('whole source byte for byte', m.source.equals(Buffer.from(raw)), () => `${m.source.length} bytes`);
    for (const [start, len] of [[262100, 200], [524288, 1], [0, 262144], [raw.length - 10, 100], [raw.length + 5, 10]]) {
        const p = await c.fetchOne('1', { source: { start, maxLength: len } }, { uid: true });
        t.eq(`partial <${start}.${len}>`, p.source.toString(), raw.slice(start, start + len));
    }
    const d = await c.download('1', undefined, { uid: true });
    const all = Buffer.concat(await collect(d.content));
    t.ok('download streams it whole', all.equals(Buffer.from(raw)), () => `${all.length} bytes`);
    // Line 10000 is ~750 KB in, past the first chunks. Petrel keeps the first
    // MiB of a message's text for SEARCH (MIME_DEFAULT_MAX_TEXT), so text
    // further in is not found: a limit of its own, not what this case tests.
    const found = await c.search({ body: 'line 0010000' }, { uid: true });
    t.eq('SEARCH BODY finds text deep in it', found, [1]);
});

// imapflow restarts IDLE every maxIdleTime (DONE, then IDLE again). Changes
// that land between DONE and the next IDLE must still reach the client, at
// the latest when IDLE starts again: after 60 quick changes, the idler's
// model from its events equals the server.
test('idle_restarts', async t => {
    // imapflow's logger is where it says which commands it sends.
    let idles = 0;
    const logger = { debug: e => { if (e.src === 'c' && / IDLE$/.test(String(e.msg))) idles++; },
        info() {}, warn() {}, error() {}, trace() {}, fatal() {}, child() { return logger; } };
    const a = await t.connect({ frontend: 0, maxIdleTime: 40, logger });
    const b = await t.connect({ frontend: 1 });
    for (let i = 0; i < 10; i++) await b.append('INBOX', message({ subject: `r${i}` }));
    await a.mailboxOpen('INBOX');
    await b.mailboxOpen('INBOX');
    const log = recorder(a);
    const mir = await mirror(t, a, log);
    a.idle();
    await until('A idling', () => a.idling);
    const rnd = prng(40);
    let live = mir.model.map(m => m.uid);
    for (let i = 0; i < 60; i++) {
        const r = rnd();
        if (r < 0.3 || live.length < 3) {
            live.push((await b.append('INBOX', message({ subject: `n${i}` }))).uid);
        } else if (r < 0.8) {
            await b.messageFlagsSet(String(live[Math.floor(rnd() * live.length)]), [`$F${i}`], { uid: true });
        } else {
            const [uid] = live.splice(Math.floor(rnd() * live.length), 1);
            await b.messageDelete(String(uid), { uid: true });
        }
        if (i % 10 === 0) await new Promise(r => setTimeout(r, 30)); // let a restart fall in between
    }
    const final = (await collect(b.fetch('1:*', { uid: true, flags: true })))
        .map(m => ({ uid: m.uid, flags: flagList(m.flags) }));
    await until('A caught up', () => {
        let n = mir.model.length;
        for (const e of log) n = e.ev === 'expunge' ? n - 1 : e.ev === 'exists' ? e.count : n;
        return n === final.length;
    });
    await new Promise(r => setTimeout(r, 200));
    await mir.drain();
    t.ok('IDLE was restarted in between', idles > 5, () => `${idles} IDLE commands`);
    t.eq('A\'s model from its events equals the server', mir.model, final);
});

// Device A idles on frontend 1 while device B on frontend 2 appends, flags,
// moves, expunges and renames. Step by step, A must see each change as the
// events the RFC prescribes with the right sequence numbers; then in a burst
// A's model, built only from the events in their order, must equal the server.
test('multi_device', async t => {
    const a = await t.connect({ frontend: 0 });
    const b = await t.connect({ frontend: 1 });
    await b.mailboxCreate('Work');
    for (let i = 0; i < 5; i++) await b.append('Work', message({ subject: `w${i}` }));
    await a.mailboxOpen('Work');
    await b.mailboxOpen('Work');
    const log = recorder(a);
    const mir = await mirror(t, a, log);
    const idle = async () => { a.idle(); await until('A idling', () => a.idling); };
    const truth = async () => (await collect(b.fetch('1:*', { uid: true, flags: true })))
        .map(m => ({ uid: m.uid, flags: flagList(m.flags) }));
    // expect: A's events, exactly; or { removes: UIDS } for an expunge of
    // several, whose EXPUNGEs may come in any order (see applyExpunges).
    const step = async (what, action, expect) => {
        await idle();
        await action();
        const removes = expect.removes;
        // messageDelete's STORE +FLAGS \Deleted may show before its EXPUNGE
        // (see idle_events); flag events carry UIDs, checked by drain().
        const seen = () => log.filter(e => !(removes && e.ev === 'flags' && e.flags.includes('\\Deleted')))
            .map(({ modseq, uid, ...e }) => e);
        await until(what, () => seen().length >= (removes || expect).length);
        await new Promise(r => setTimeout(r, 50)); // nothing more may follow
        if (removes) {
            t.ok(`${what}: only EXPUNGEs`, seen().every(e => e.ev === 'expunge' && !e.vanished), () => show(seen()));
            t.eq(what, applyExpunges(mir.model.map(x => x.uid), seen().map(e => e.seq)).sort((x, y) => x - y), removes);
        } else {
            t.eq(what, seen(), expect);
        }
        await mir.drain();
        t.eq(`${what}: A's model equals the server`, mir.model, await truth());
    };

    const { uid: u6 } = await b.append('Work', message({ subject: 'w5' }));
    await step('append: EXISTS 6', async () => {}, [{ ev: 'exists', count: 6, prev: 5 }]);
    t.eq('the new message is B\'s APPENDUID', mir.model[5].uid, u6);
    await step('flag message 3: FETCH 3', () => b.messageFlagsAdd('3', ['\\Flagged'], { uid: true }),
        [{ ev: 'flags', seq: 3, flags: ['\\Flagged'] }]);
    await b.mailboxCreate('Done');
    await step('move UID 2: EXPUNGE 2', () => b.messageMove('2', 'Done', { uid: true }),
        { removes: [2] });
    // UIDs 1 3 4 5 6 remain; 3, 4 and 5 are sequence numbers 2 to 4.
    await step('expunge UIDs 3:5', () => b.messageDelete('3:5', { uid: true }), { removes: [3, 4, 5] });
    await step('flags and a new message together', async () => {
        await b.messageFlagsSet('1', ['\\Seen', '\\Answered'], { uid: true });
        await b.append('Work', message({ subject: 'w6' }));
    }, [{ ev: 'flags', seq: 1, flags: ['\\Answered', '\\Seen'] }, { ev: 'exists', count: 3, prev: 2 }]);

    // Rename: IMAP has no push for it; A sees the new name in LIST, and the
    // mailbox it has open is the same mailbox (same UIDVALIDITY, messages).
    const before = await b.status('Done', { uidValidity: true, messages: true });
    const workDone = (await b.mailboxRename('Done', ['Work', 'Done'])).newPath;
    const list = (await a.list()).map(m => m.path);
    t.ok('A lists the renamed mailbox', list.includes(workDone) && !list.includes('Done'), () => show(list));
    const after = await a.status(workDone, { uidValidity: true, messages: true });
    t.eq('renamed mailbox kept UIDVALIDITY and messages', [after.uidValidity, after.messages],
        [before.uidValidity, before.messages]);

    // A burst without waiting: A's model from the events must end equal to the server.
    await idle();
    const rnd = prng(7);
    for (let i = 0; i < 40; i++) {
        const r = rnd();
        const cur = await truth();
        if (r < 0.35 || cur.length < 3) {
            await b.append('Work', message({ subject: `burst${i}` }), rnd() < 0.5 ? ['\\Seen'] : []);
        } else if (r < 0.7) {
            const m = cur[Math.floor(rnd() * cur.length)];
            await b.messageFlagsSet(String(m.uid), rnd() < 0.5 ? ['$K' + i] : ['\\Flagged'], { uid: true });
        } else if (r < 0.85) {
            await b.messageMove(String(cur[Math.floor(rnd() * cur.length)].uid), workDone, { uid: true });
        } else {
            const m1 = cur[Math.floor(rnd() * cur.length)].uid, m2 = cur[Math.floor(rnd() * cur.length)].uid;
            await b.messageDelete(`${m1},${m2}`, { uid: true });
        }
    }
    const final = await truth();
    // A caught up when its event stream describes the final count.
    await until('A caught up with the burst', () => {
        let n = mir.model.length;
        for (const e of log) n = e.ev === 'expunge' ? n - 1 : e.ev === 'exists' ? e.count : n;
        return n === final.length && log.length > 0;
    });
    await new Promise(r => setTimeout(r, 100));
    await mir.drain();
    t.eq('after the burst A\'s model equals the server', mir.model, final);
});

// Four devices append at once through both frontends while a fifth idles:
// every APPENDUID is distinct, UIDs are 1..N with none lost, and the idler's
// EXISTS only grows and ends at N (RFC 3501 7.3.1: EXISTS never shrinks
// without an EXPUNGE).
test('concurrent_append', async t => {
    const watcher = await t.connect({ frontend: 0 });
    await watcher.mailboxCreate('Busy');
    await watcher.mailboxOpen('Busy');
    const counts = [];
    watcher.on('exists', e => counts.push(e.count));
    watcher.idle();
    await until('watcher idling', () => watcher.idling);
    const devices = await Promise.all([0, 1, 0, 1].map(frontend => t.connect({ frontend })));
    const per = 25, n = per * devices.length;
    const uids = (await Promise.all(devices.map(async (d, k) => {
        const got = [];
        for (let i = 0; i < per; i++) got.push((await d.append('Busy', message({ subject: `d${k}m${i}` }))).uid);
        return got;
    }))).flat();
    t.eq('every APPENDUID distinct, 1..N', sorted(uids), [...Array(n).keys()].map(i => i + 1));
    for (const [k, d] of devices.entries()) {
        const mine = uids.slice(k * per, (k + 1) * per);
        t.ok(`device ${k}'s UIDs increase in its own order`, mine.every((u, i) => i === 0 || u > mine[i - 1]),
            () => show(mine));
    }
    await until('watcher saw all', () => counts.length && counts[counts.length - 1] === n);
    t.ok('EXISTS only grows', counts.every((c, i) => i === 0 || c > counts[i - 1]), () => show(counts));
    const seen = await collect(watcher.fetch('1:*', { uid: true, envelope: true }));
    t.eq('the watcher fetches them all in UID order', seen.map(m => m.uid), [...Array(n).keys()].map(i => i + 1));
});

// An offline device resynchronises with QRESYNC after 500 changes made by
// another device and must learn exactly those: the UIDs expunged since (as
// VANISHED (EARLIER)) and the messages changed or added since (as FETCH), no
// unchanged message.
test('qresync_offline_500', async t => {
    const b = await t.connect({ frontend: 1 });
    await b.mailboxCreate('Sync');
    for (let i = 0; i < 120; i++) await b.append('Sync', message({ subject: `s${i}` }), i % 3 ? [] : ['\\Seen']);

    const c1 = await t.connect({ frontend: 0, qresync: true });
    const mb = await c1.mailboxOpen('Sync');
    const snapshot = new Map((await collect(c1.fetch('1:*', { uid: true, flags: true })))
        .map(m => [m.uid, flagList(m.flags)]));
    const { uidValidity, highestModseq } = c1.mailbox;
    t.eq('snapshot has 120 messages', [snapshot.size, mb.exists], [120, 120]);
    await c1.logout();

    await b.mailboxOpen('Sync');
    const rnd = prng(500);
    const live = [...snapshot.keys()];
    const changed = new Set(), expunged = new Set();
    const flags = new Map([...snapshot].map(([uid, f]) => [uid, new Set(f)]));
    for (let i = 0; i < 500; i++) {
        const r = rnd();
        if (r < 0.5 && live.length) {
            const uid = live[Math.floor(rnd() * live.length)];
            const flag = ['\\Seen', '\\Flagged', '\\Answered', '$Later'][Math.floor(rnd() * 4)];
            const add = rnd() < 0.5;
            await (add ? b.messageFlagsAdd : b.messageFlagsRemove).call(b, String(uid), [flag], { uid: true });
            // A STORE that changes nothing leaves the MODSEQ (RFC 7162 3.1.3),
            // so it is no change to resynchronise.
            const had = flags.get(uid);
            if (had.has(flag) !== add) {
                add ? had.add(flag) : had.delete(flag);
                changed.add(uid);
            }
        } else if (r < 0.75 || !live.length) {
            const { uid } = await b.append('Sync', message({ subject: `new${i}` }));
            live.push(uid);
            flags.set(uid, new Set());
            changed.add(uid);
        } else {
            const k = Math.floor(rnd() * live.length);
            const [uid] = live.splice(k, 1);
            await b.messageDelete(String(uid), { uid: true });
            expunged.add(uid);
            changed.delete(uid);
        }
    }
    t.ok('the 500 changes touched flags, appends and expunges', changed.size > 100 && expunged.size > 50,
        () => `changed ${changed.size}, expunged ${expunged.size}`);

    const c2 = t.client({ frontend: 0, qresync: true });
    await c2.connect();
    const log = recorder(c2);
    const mb2 = await c2.mailboxOpen('Sync', { uidValidity, changedSince: highestModseq });
    const vanished = log.filter(e => e.ev === 'expunge');
    t.ok('every expunge arrived as VANISHED (EARLIER)', vanished.every(e => e.vanished && e.earlier),
        () => show(vanished.slice(0, 5)));
    // Petrel keeps a tombstone per expunged UID, so the VANISHED set is exact
    // (RFC 7162 3.2.5.1 lets a server name more; Petrel names no UID that
    // did not exist and vanish after CHANGEDSINCE).
    t.eq('VANISHED (EARLIER) names exactly the expunged UIDs', sorted(vanished.map(e => e.uid)), sorted(expunged));
    const fetched = log.filter(e => e.ev === 'flags');
    t.eq('FETCH for exactly the changed and new messages', sorted(fetched.map(e => e.uid)), sorted(changed));
    t.ok('each with a MODSEQ above the old HIGHESTMODSEQ', fetched.every(e => e.modseq > highestModseq));
    t.eq('EXISTS after resync', mb2.exists, live.length);

    // Apply the resync to the snapshot: it must equal a full fetch.
    for (const uid of expunged) snapshot.delete(uid);
    for (const e of fetched) snapshot.set(e.uid, e.flags);
    const full = new Map((await collect(c2.fetch('1:*', { uid: true, flags: true }))).map(m => [m.uid, flagList(m.flags)]));
    t.eq('snapshot plus resync equals the mailbox', new Map([...snapshot].sort((x, y) => x[0] - y[0])), full);

    // The same resync on an open mailbox: UID FETCH (CHANGEDSINCE VANISHED).
    const c4 = await t.connect({ frontend: 1, qresync: true });
    await c4.mailboxOpen('Sync');
    const log4 = recorder(c4);
    const since = await collect(c4.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: highestModseq }));
    t.eq('FETCH CHANGEDSINCE: the changed and new messages', sorted(since.map(m => m.uid)), sorted(changed));
    const v4 = log4.filter(e => e.ev === 'expunge');
    t.ok('with VANISHED (EARLIER)', v4.every(e => e.vanished && e.earlier), () => show(v4.slice(0, 5)));
    t.eq('for exactly the expunged UIDs', sorted(v4.map(e => e.uid)), sorted(expunged));

    // A stale UIDVALIDITY gets no resync data, just the mailbox.
    const c3 = await t.connect({ frontend: 1, qresync: true });
    const log3 = recorder(c3);
    await c3.mailboxOpen('Sync', { uidValidity: uidValidity + 1n, changedSince: highestModseq });
    t.eq('wrong UIDVALIDITY: no VANISHED, no FETCH', log3, []);
});

// ---- main ----------------------------------------------------------------------

const [name, configJson] = process.argv.slice(2);
if (name === '--list') {
    process.stdout.write(Object.keys(cases).join('\n') + '\n');
    process.exit(0);
}
if (!cases[name] || !configJson) {
    process.stderr.write(`usage: node imapflow_suite.mjs CASE CONFIG_JSON | --list\ncases: ${Object.keys(cases).join(' ')}\n`);
    process.exit(2);
}
runCase(name, cases[name], JSON.parse(configJson)).then(ok => process.exit(ok ? 0 : 1));
