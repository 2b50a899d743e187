"""The scenario the Python drivers run (interop.py), the same checks as
Interop.java and interop.js: paging, every write with bound parameters,
request-id retries, errors by SQLSTATE, the change cursor on read-write and
read-only connections.  Statements use "?" for a parameter; interop.py turns
it into the driver's placeholder.

The database is a fresh copy of the docs fixture (test/docs/setup.sql) after
the documented statements of docs/integrations.md ran in it.
"""
import sys


class Tap:
    """Counts and prints checks: "ok - what" or "not ok - what: detail"."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what, detail=None):
        if cond:
            self.passed += 1
            print(f"ok - {what}")
        else:
            self.failed += 1
            print(f"not ok - {what}" + (f": {detail}" if detail is not None else ""))
        sys.stdout.flush()

    def eq(self, got, want, what):
        self.ok(got == want, what, f"got {got!r}, want {want!r}")

    def done(self):
        return 1 if self.failed else 0


def statements(path):
    """The (where, sql) entries of a file written by doc_statements.py."""
    entries, where, buf = [], None, []
    for line in open(path, encoding="utf-8"):
        if line.startswith("@@ "):
            if where:
                entries.append((where, "".join(buf).rstrip("\n")))
            where, buf = line[3:].strip(), []
        else:
            buf.append(line)
    if where:
        entries.append((where, "".join(buf).rstrip("\n")))
    return entries


def scenario(t, p, read_only, superuser, loads):
    """p: the platform's connection (autocommit); read_only(), superuser():
    new connections in read-only and read-write transactions."""

    def js(v):
        # psycopg decodes jsonb itself; pyodbc hands over text
        return loads(v) if isinstance(v, str) else v

    # Enumeration with keyset paging: after is the last id seen (text).
    full = [r[0] for r in p.rows("SELECT id FROM connector.accounts('crm', NULL, 1000)")]
    paged, after = [], None
    while True:
        page = p.rows("SELECT id, name FROM connector.accounts('crm', ?, ?)", (after, 2))
        paged += [r[0] for r in page]
        if len(page) < 2:
            break
        after = page[-1][0]
    t.ok(len(full) >= 3, "accounts to page through", full)
    t.eq(paged, full, "keyset paging with the last id bound as a string returns every account once")

    # create_account: attributes as a JSON string, a request id.
    ca = "SELECT connector.create_account('crm', ?, ?, ?)"
    new_id = p.one(ca, ("eve", '{"email": "eve@example.com", "department": "Ops"}', "it-create"))
    t.ok(str(new_id).isdigit(), "create_account with attributes bound as a string returns the new id", new_id)
    t.eq(p.one(ca, ("eve", '{"email": "eve@example.com", "department": "Ops"}', "it-create")), new_id,
         "a retry with the same request id returns the first outcome")
    t.eq(p.state(ca, ("eve", '{"email": "other@example.com"}', "it-create")), "23505",
         "the same request id with other attributes: unique_violation")
    t.eq(p.state(ca, ("eve", '{"email": "eve@example.com"}', None)), "23505",
         "a blind retry without request id: unique_violation (the name exists)")
    prev = str(int(new_id) - 1)
    t.eq(p.rows("SELECT id, attributes->>'email', attributes->>'department' FROM connector.accounts('crm', ?, 1)",
                (prev,)), [(new_id, "eve@example.com", "Ops")], "the attributes are stored")

    # update_account
    ua = "SELECT connector.update_account('crm', ?, ?, ?)"
    t.eq(p.one(ua, (new_id, '{"department": "Finance"}', "it-update")), "updated", "update_account, JSON as a string")
    t.eq(p.one(ua, (new_id, '{"department": "Finance"}', "it-update")), "updated", "its retry: the first outcome")
    t.eq(p.one("SELECT connector.update_account('crm', ?, ?)", (new_id, '{"department": "Finance"}')), "unchanged",
         "update_account without request id: idempotent by state")

    # A time-bound grant: expires_at as a string, computed once, sent again on a retry.
    g = "SELECT connector.grant('crm', ?, ?, ?, ?)"
    t.eq(p.one(g, (new_id, "9", "it-grant-exp", "2099-01-01T00:00:00Z")), "granted", "grant with expires_at as a string")
    t.eq(p.one(g, (new_id, "9", "it-grant-exp", "2099-01-01T00:00:00Z")), "granted", "its retry: the first outcome")
    t.eq(p.one(g, (new_id, "9", "it-grant-exp", "2099-01-01 01:00:00+01")), "granted",
         "the same instant written otherwise is the same request")
    t.eq(p.state(g, (new_id, "9", "it-grant-exp", "2099-01-02T00:00:00Z")), "23505",
         "another expiry under the same request id: unique_violation")
    gn = "SELECT connector.grant('crm', ?, ?, request_id => ?)"
    t.eq(p.one(gn, (new_id, "1", "it-grant")), "granted", "grant with a named request_id")
    t.eq(p.one(gn, (new_id, "1", "it-grant")), "granted", "its retry: the first outcome")

    # Ids the caller holds as numbers: CAST(? AS text).
    t.eq(p.one("SELECT connector.disable('crm', CAST(? AS text), ?)", (int(new_id), "it-disable")), "disabled",
         "disable with the id bound as a number and CAST(? AS text)")
    t.eq(p.one("SELECT connector.enable('crm', CAST(? AS text))", (int(new_id),)), "enabled",
         "enable likewise")

    # apply: the operations as a JSON string.
    ops = ('[{"op": "revoke", "account": "%s", "entitlement": "1", "request_id": "it-apply"},'
           ' {"op": "grant", "account": %s, "entitlement": "2"}]' % (new_id, new_id))
    t.eq(js(p.one("SELECT connector.apply('crm', ?)", (ops,))), ["revoked", "granted"],
         "apply with the operations bound as a string")
    t.eq(js(p.one("SELECT connector.apply('crm', ?)", (ops,))), ["revoked", "unchanged"],
         "its retry: the recorded outcome, and a grant idempotent by state")

    # reconcile: the desired state as a JSON string.
    rc = "SELECT action, account, entitlement FROM connector.reconcile('crm', ?)"
    t.eq(p.rows(rc, ('{"accounts": [{"id": "%s", "entitlements": ["2", "9"]}]}' % new_id,)), [],
         "reconcile with the desired state as a string: no drift")
    t.eq(p.rows(rc, ('{"accounts": [{"id": "%s", "entitlements": ["2"]}]}' % new_id,)), [("revoke", new_id, "9")],
         "reconcile reports the difference")

    # offboard returns jsonb.
    off = js(p.one("SELECT connector.offboard('crm', ?, ?)", (new_id, "it-offboard")))
    t.eq((off["account"], off["disabled"], sorted(off["revoked"])), (new_id, True, ["2", "9"]),
         "offboard returns its summary as JSON")

    # Errors by SQLSTATE.
    for stmt, params, state, what in [
            ("SELECT connector.grant('crm', ?, ?)", ("99999", "1"), "P0002", "a missing account: no_data_found"),
            ("SELECT connector.disable('crm', ?)", ("abc",), "22P02", "an id that does not parse: 22P02"),
            (ca, ("frank", "{bad", "it-bad"), "22P02", "JSON that does not parse: 22P02"),
            (g, (new_id, "1", "it-bad-exp", "next week"), "22007", "a timestamp that does not parse: invalid_datetime_format"),
            ("SELECT id FROM connector.accounts(?, NULL, 10)", ("nope",), "42704",
             "an unknown application: undefined_object"),
            ("SELECT count(*) FROM connector.changes('crm', ?, ?)", ("-1", 10), "22023",
             "a negative position: invalid_parameter_value")]:
        t.eq(p.state(stmt, params), state, what)

    # The change cursor on a read-write connection: positions as numbers.
    events, after = [], 0
    while True:
        page = p.rows("SELECT position, event FROM connector.changes('crm', ?, ?)", (after, 50))
        events += [(int(r[0]), js(r[1])) for r in page]
        if len(page) < 50:
            break
        after = events[-1][0]
    positions = [e[0] for e in events]
    t.eq(positions, list(range(1, len(positions) + 1)), "changes() pages through every event in position order")
    rids = {e[1]["data"]["origin"].get("request_id") for e in events}
    want = {"it-create", "it-update", "it-grant-exp", "it-grant", "it-disable", "it-apply", "it-offboard"}
    t.ok(want <= rids, "the events of every write above are there, with their request ids", want - rids)
    t.eq([e[1]["data"]["expires_at"] for e in events
          if e[1]["data"]["origin"].get("request_id") == "it-grant-exp"],
         ["2099-01-01T00:00:00+00:00"], "the time-bound grant carries its expiry, once")
    mid = positions[len(positions) // 2]
    t.eq(p.rows("SELECT position FROM connector.changes('crm', ?, ?)", (str(mid), 1000)),
         [(x,) for x in positions if x > mid], "the position bound as a string gives the same page")

    # The change cursor on read-only connections, with committed events that
    # are not sealed: the sealer's lock is held, so none can be sealed.
    su = superuser()
    last = int(su.one("SELECT last_position FROM connector.seal_state FOR UPDATE"))
    t.eq(p.one("SELECT connector.disable('crm', ?, ?)", ("1", "it-read-only")), "disabled", "a write, committed")
    t.ok(int(su.one("SELECT coalesce(sum(n), 0) FROM connector.outbox WHERE position IS NULL")) > 0,
         "committed events are waiting to be sealed")
    for attempt in (1, 2):
        ro = read_only()
        t.eq(ro.one("SHOW transaction_read_only"), "on", f"the connection is read-only (try {attempt})")
        try:
            got = [int(r[0]) for r in ro.rows("SELECT position, event FROM connector.changes('crm', ?, ?)",
                                              (0, 100000))]
            t.eq(got[-1] if got else 0, last,
                 f"changes() on it returns the sealed events, without error (try {attempt})")
        except Exception as e:
            t.ok(False, f"changes() on it returns the sealed events, without error (try {attempt})", e)
        ro.conn.rollback()
        ro.conn.close()
    su.conn.rollback()
    su.conn.close()
    after = [js(r[0]) for r in p.rows("SELECT event FROM connector.changes('crm', ?, ?)", (last, 100))]
    t.ok(any(e["data"]["origin"].get("request_id") == "it-read-only" for e in after),
         "a read-write changes() then seals and returns the new event")
