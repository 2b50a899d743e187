#!/usr/bin/python3
"""The documented calls through Python drivers: psycopg2, psycopg (3) and
pyodbc over psqlODBC.  Usage: interop.py DRIVER STATEMENTS_FILE, with the
connection in the environment (see run.sh).  Prints "ok - ..." or
"not ok - ..." per check; exits 1 if any failed.

psycopg2 splices parameters into the SQL text as quoted literals (untyped);
psycopg 3 binds them on the server, strings untyped, integers as int2/int4/
int8; psqlODBC binds strings as varchar, as JDBC's setString does.
"""
import datetime
import json
import os
import sys

import common

DRIVER = sys.argv[1]
env = os.environ


def connect(user, password, db, mode="auto"):
    """mode: "auto" (autocommit), "tx" (transactions) or "ro" (read-only transactions)."""
    read_only = mode == "ro"
    host, port = env["PGHOST"], env["PGPORT"]
    if DRIVER == "psycopg2":
        import psycopg2
        c = psycopg2.connect(host=host, port=port, dbname=db, user=user, password=password,
                             options="-c statement_timeout=20s")
        if read_only:
            c.set_session(readonly=True)
        c.autocommit = mode == "auto"
        return c
    if DRIVER == "psycopg":
        import psycopg
        c = psycopg.connect(host=host, port=port, dbname=db, user=user, password=password,
                            options="-c statement_timeout=20s", autocommit=mode == "auto")
        if read_only:
            c.read_only = True
        return c
    if DRIVER == "pyodbc":
        import pyodbc
        # psqlODBC has no read-only mode of its own: the session's default,
        # set in the DSN's ConnSettings as docs/integrations.md says
        settings = "SET statement_timeout = '20s'"
        if read_only:
            settings += "; SET default_transaction_read_only = on"
        c = pyodbc.connect(
            f"DRIVER={{PostgreSQL Unicode}};SERVER={host};PORT={port};DATABASE={db};"
            f"UID={user};PWD={password};ConnSettings={{{settings}}}",
            autocommit=mode == "auto")
        return c
    raise SystemExit(f"unknown driver {DRIVER}")


def sqlstate(exc):
    if DRIVER == "psycopg2":
        return exc.pgcode
    if DRIVER == "psycopg":
        return exc.sqlstate
    return exc.args[0] if exc.args else None


def sql(text):
    """The DB-API placeholder of the driver in place of '?'."""
    return text if DRIVER == "pyodbc" else text.replace("?", "%s")


class Db:
    def __init__(self, conn):
        self.conn = conn

    def rows(self, text, params=()):
        cur = self.conn.cursor()
        cur.execute(sql(text), tuple(params)) if params else cur.execute(sql(text))
        r = [tuple(x) for x in cur.fetchall()] if cur.description else []
        cur.close()
        return r

    def one(self, text, params=()):
        return self.rows(text, params)[0][0]

    def state(self, text, params=()):
        """The SQLSTATE of the statement, or None when it succeeds."""
        try:
            self.rows(text, params)
        except Exception as e:  # the driver's error class
            if not self.conn.autocommit:
                self.conn.rollback()
            return sqlstate(e)
        return None

    def raw(self, text):
        """Run a statement as written (no placeholder processing)."""
        cur = self.conn.cursor()
        cur.execute(text)
        if cur.description:
            cur.fetchall()
        cur.close()


def main():
    t = common.Tap(DRIVER)
    db_name, user, password = env["INTEROP_DB"], env["INTEROP_USER"], env["INTEROP_PASSWORD"]
    p = Db(connect(user, password, db_name))

    # The documented statements, verbatim.
    for where, text in common.statements(sys.argv[2]):
        try:
            p.raw(text)
            t.ok(True, f"documented statement {where}")
        except Exception as e:
            t.ok(False, f"documented statement {where}", e)

    common.scenario(t, p, lambda: Db(connect(user, password, db_name, "ro")),
                    lambda: Db(connect(env["PGUSER"], env["PGPASSWORD"], db_name, "tx")),
                    json.loads)
    if DRIVER in ("psycopg2", "psycopg"):
        adapters(t, p)
    return t.done()


def adapters(t, p):
    """The driver's own adapters for JSON and timestamps (typed parameters)."""
    if DRIVER == "psycopg2":
        from psycopg2.extras import Json as JsonParam
        name = "psycopg2.extras.Json"
    else:
        from psycopg.types.json import Jsonb as JsonParam
        name = "psycopg.types.json.Jsonb"
    aid = p.one("SELECT connector.create_account('crm', ?, ?, ?)",
                ("frida", JsonParam({"email": "frida@example.com"}), "it-adapter-create"))
    t.ok(str(aid).isdigit(), f"create_account with {name}(dict)", aid)
    t.eq(p.one("SELECT connector.create_account('crm', ?, ?, ?)",
               ("frida", '{"email": "frida@example.com"}', "it-adapter-create")), aid,
         "its retry with the JSON as a string: the same request")
    when = datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)
    g = "SELECT connector.grant('crm', ?, ?, ?, ?)"
    t.eq(p.one(g, (aid, "9", "it-adapter-exp", when)), "granted", "grant with an aware datetime")
    t.eq(p.one(g, (aid, "9", "it-adapter-exp", "2099-01-01T00:00:00Z")), "granted",
         "its retry with the expiry as a string: the same request")


if __name__ == "__main__":
    sys.exit(main())
