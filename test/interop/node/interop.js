// The documented calls through node-postgres (pg): the documented statements
// verbatim, then paging, every write with bound parameters, request-id
// retries, errors by SQLSTATE, the change cursor on read-write and read-only
// connections.  node-postgres sends every parameter untyped (as text, objects
// as JSON), and reads bigint back as a string.
//
// Run by test/interop/run.sh: node interop.js STATEMENTS_FILE, with PGHOST,
// PGPORT, PGUSER, PGPASSWORD (a superuser), INTEROP_DB, INTEROP_USER and
// INTEROP_PASSWORD set.  Prints "ok - ..." or "not ok - ..." per check and
// exits 1 if any failed.
'use strict';
const fs = require('fs');
const { Client } = require('pg');

let failed = 0;
function ok(cond, what, detail) {
	if (cond) {
		console.log(`ok - ${what}`);
	} else {
		failed++;
		console.log(`not ok - ${what}` + (detail === undefined ? '' : `: ${JSON.stringify(detail)}`));
	}
}
function eq(got, want, what) {
	ok(JSON.stringify(got) === JSON.stringify(want), what, { got, want });
}

async function connect(user, password, options = '') {
	const c = new Client({
		host: process.env.PGHOST, port: Number(process.env.PGPORT), database: process.env.INTEROP_DB,
		user, password, options: `-c statement_timeout=20s ${options}`,
	});
	await c.connect();
	return c;
}
const platform = (options) => connect(process.env.INTEROP_USER, process.env.INTEROP_PASSWORD, options);

async function rows(c, text, values = []) {
	return (await c.query({ text, values, rowMode: 'array' })).rows;
}
async function one(c, text, values) {
	return (await rows(c, text, values))[0][0];
}
async function state(c, text, values) {
	try {
		await c.query(text, values);
		return null;
	} catch (e) {
		return e.code;
	}
}

function statements(file) {
	const out = [];
	for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
		if (line.startsWith('@@ '))
			out.push({ where: line.slice(3).trim(), sql: '' });
		else if (out.length)
			out[out.length - 1].sql += line + '\n';
	}
	return out;
}

async function documented(file) {
	const c = await platform();
	for (const s of statements(file)) {
		try {
			// the extended protocol, as with parameters: one statement only
			await c.query({ text: s.sql.trim(), values: [] , name: undefined, queryMode: 'extended' });
			ok(true, `documented statement ${s.where}`);
		} catch (e) {
			ok(false, `documented statement ${s.where}`, `${e.code} ${e.message}`);
		}
	}
	await c.end();
}

async function scenario() {
	const p = await platform();

	// Enumeration with keyset paging: after is the last id seen.
	const full = (await rows(p, "SELECT id FROM connector.accounts('crm', NULL, 1000)")).map((r) => r[0]);
	const paged = [];
	let after = null;
	for (;;) {
		const page = await rows(p, "SELECT id, name FROM connector.accounts('crm', $1, $2)", [after, 2]);
		paged.push(...page.map((r) => r[0]));
		if (page.length < 2)
			break;
		after = page[page.length - 1][0];
	}
	ok(full.length >= 3, 'accounts to page through', full);
	eq(paged, full, 'keyset paging with the last id bound returns every account once');

	// create_account: attributes as a JSON string, then as an object.
	const ca = "SELECT connector.create_account('crm', $1, $2, $3)";
	const id = await one(p, ca, ['eve', '{"email": "eve@example.com", "department": "Ops"}', 'it-create']);
	ok(/^[0-9]+$/.test(id), 'create_account with attributes as a string returns the new id', id);
	eq(await one(p, ca, ['eve', { email: 'eve@example.com', department: 'Ops' }, 'it-create']), id,
		'a retry (attributes as a JS object) returns the first outcome');
	eq(await state(p, ca, ['eve', '{"email": "other@example.com"}', 'it-create']), '23505',
		'the same request id with other attributes: unique_violation');
	eq(await state(p, ca, ['eve', '{"email": "eve@example.com"}', null]), '23505',
		'a blind retry without request id: unique_violation (the name exists)');
	eq(await rows(p, "SELECT id, attributes->>'email', attributes->>'department' FROM connector.accounts('crm', $1, 1)",
		[String(Number(id) - 1)]), [[id, 'eve@example.com', 'Ops']], 'the attributes are stored');

	// update_account
	const ua = "SELECT connector.update_account('crm', $1, $2, $3)";
	eq(await one(p, ua, [id, '{"department": "Finance"}', 'it-update']), 'updated', 'update_account, JSON as a string');
	eq(await one(p, ua, [id, '{"department": "Finance"}', 'it-update']), 'updated', 'its retry: the first outcome');
	eq(await one(p, "SELECT connector.update_account('crm', $1, $2)", [id, '{"department": "Finance"}']), 'unchanged',
		'update_account without request id: idempotent by state');

	// A time-bound grant: expires_at computed once, sent again on a retry.
	const g = "SELECT connector.grant('crm', $1, $2, $3, $4)";
	const expires = new Date('2099-01-01T00:00:00Z');
	eq(await one(p, g, [id, '9', 'it-grant-exp', '2099-01-01T00:00:00Z']), 'granted', 'grant with expires_at as a string');
	eq(await one(p, g, [id, '9', 'it-grant-exp', '2099-01-01T00:00:00Z']), 'granted', 'its retry: the first outcome');
	eq(await one(p, g, [id, '9', 'it-grant-exp', expires]), 'granted', 'the same instant as a JS Date: the same request');
	eq(await state(p, g, [id, '9', 'it-grant-exp', '2099-01-02T00:00:00Z']), '23505',
		'another expiry under the same request id: unique_violation');
	const gn = "SELECT connector.grant('crm', $1, $2, request_id => $3)";
	eq(await one(p, gn, [id, '1', 'it-grant']), 'granted', 'grant with a named request_id');
	eq(await one(p, gn, [id, '1', 'it-grant']), 'granted', 'its retry: the first outcome');

	// Ids held as numbers.
	eq(await one(p, "SELECT connector.disable('crm', $1, $2)", [Number(id), 'it-disable']), 'disabled',
		'disable with the id as a JS number (sent as text)');
	eq(await one(p, "SELECT connector.enable('crm', CAST($1 AS text))", [Number(id)]), 'enabled',
		'enable with CAST($1 AS text)');

	// apply: the operations as a JSON string.
	const ops = JSON.stringify([{ op: 'revoke', account: id, entitlement: '1', request_id: 'it-apply' },
		{ op: 'grant', account: Number(id), entitlement: '2' }]);
	eq(await one(p, "SELECT connector.apply('crm', $1)", [ops]), ['revoked', 'granted'], 'apply with the operations as a string');
	eq(await one(p, "SELECT connector.apply('crm', $1)", [ops]), ['revoked', 'unchanged'],
		'its retry: the recorded outcome, and a grant idempotent by state');

	// reconcile: the desired state as a JSON string.
	const rc = "SELECT action, account, entitlement FROM connector.reconcile('crm', $1)";
	eq(await rows(p, rc, [JSON.stringify({ accounts: [{ id, entitlements: ['2', '9'] }] })]), [],
		'reconcile with the desired state as a string: no drift');
	eq(await rows(p, rc, [JSON.stringify({ accounts: [{ id, entitlements: ['2'] }] })]), [['revoke', id, '9']],
		'reconcile reports the difference');

	// offboard returns jsonb.
	const off = await one(p, "SELECT connector.offboard('crm', $1, $2)", [id, 'it-offboard']);
	eq([off.account, off.disabled, off.revoked.sort()], [id, true, ['2', '9']], 'offboard returns its summary as JSON');

	// Errors by SQLSTATE.
	eq(await state(p, "SELECT connector.grant('crm', $1, $2)", ['99999', '1']), 'P0002', 'a missing account: no_data_found');
	eq(await state(p, "SELECT connector.disable('crm', $1)", ['abc']), '22P02', 'an id that does not parse: 22P02');
	eq(await state(p, ca, ['frank', '{bad', 'it-bad']), '22P02', 'JSON that does not parse: 22P02');
	eq(await state(p, g, [id, '1', 'it-bad-exp', 'next week']), '22007', 'a timestamp that does not parse: invalid_datetime_format');
	eq(await state(p, 'SELECT id FROM connector.accounts($1, NULL, 10)', ['nope']), '42704',
		'an unknown application: undefined_object');
	eq(await state(p, "SELECT count(*) FROM connector.changes('crm', $1, $2)", [-1, 10]), '22023',
		'a negative position: invalid_parameter_value');

	// The change cursor, read-write.  Positions come back as strings (bigint).
	const ch = "SELECT position, event FROM connector.changes('crm', $1, $2)";
	const events = [];
	let at = 0;
	for (;;) {
		const page = await rows(p, ch, [at, 50]);
		events.push(...page);
		if (page.length < 50)
			break;
		at = page[page.length - 1][0];
	}
	eq(events.map((e) => Number(e[0])), events.map((_, i) => i + 1), 'changes() pages through every event in position order');
	const rids = new Set(events.map((e) => e[1].data.origin.request_id));
	const want = ['it-create', 'it-update', 'it-grant-exp', 'it-grant', 'it-disable', 'it-apply', 'it-offboard'];
	ok(want.every((r) => rids.has(r)), 'the events of every write above are there, with their request ids', [...rids]);
	eq(events.filter((e) => e[1].data.origin.request_id === 'it-grant-exp').map((e) => e[1].data.expires_at),
		['2099-01-01T00:00:00+00:00'], 'the time-bound grant carries its expiry, once');

	// The change cursor on read-only connections, with committed events that
	// are not sealed: the sealer's lock is held, so none can be.
	const su = await connect(process.env.PGUSER, process.env.PGPASSWORD);
	await su.query('BEGIN');
	const last = Number(await one(su, 'SELECT last_position FROM connector.seal_state FOR UPDATE'));
	eq(await one(p, "SELECT connector.disable('crm', $1, $2)", ['1', 'it-read-only']), 'disabled', 'a write, committed');
	ok(Number(await one(su, 'SELECT coalesce(sum(n), 0) FROM connector.outbox WHERE position IS NULL')) > 0,
		'committed events are waiting to be sealed');
	for (const [mode, options, begin] of [['default_transaction_read_only in options', '-c default_transaction_read_only=on', null],
		['BEGIN READ ONLY', '', 'BEGIN READ ONLY']]) {
		const ro = await platform(options);
		if (begin)
			await ro.query(begin);
		eq(await one(ro, 'SHOW transaction_read_only'), 'on', `${mode}: the connection is read-only`);
		for (const t of [1, 2]) {
			try {
				const got = await rows(ro, 'SELECT position FROM connector.changes(\'crm\', $1, $2)', [0, 100000]);
				eq(got.length ? Number(got[got.length - 1][0]) : 0, last,
					`${mode}: changes() returns the sealed events, without error (try ${t})`);
			} catch (e) {
				ok(false, `${mode}: changes() returns the sealed events, without error (try ${t})`, `${e.code} ${e.message}`);
			}
		}
		await ro.end();
	}
	await su.query('ROLLBACK');
	await su.end();
	const newer = await rows(p, ch, [last, 100]);
	ok(newer.some((e) => e[1].data.origin.request_id === 'it-read-only'),
		'a read-write changes() then seals and returns the new event');
	await p.end();
}

(async () => {
	await documented(process.argv[2]);
	try {
		await scenario();
	} catch (e) {
		ok(false, 'the scenario ran to its end', `${e.code || ''} ${e.stack}`);
	}
	process.exit(failed ? 1 : 0);
})();
