/*
 * The documented calls through the PostgreSQL JDBC driver (pgjdbc), as
 * SailPoint's JDBC connector and midPoint's ScriptedSQL (groovy.sql.Sql) make
 * them: the documented statements verbatim in PreparedStatements, then
 * paging, every write with bound parameters (setString for ids, JSON and
 * timestamps; setLong with CAST(? AS text)), request-id retries, errors by
 * SQLSTATE, the change cursor on read-write and read-only connections.
 *
 * Run by test/interop/run.sh:
 *   java -cp /usr/share/java/postgresql.jar Interop.java STATEMENTS_FILE
 * with PGHOST, PGPORT, PGUSER, PGPASSWORD (a superuser), INTEROP_DB,
 * INTEROP_USER and INTEROP_PASSWORD (the platform's login) set.  Prints
 * "ok - ..." or "not ok - ..." per check and exits 1 if any failed.
 */
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Properties;

public class Interop {
	static int passed;
	static int failed;

	static String env(String name) {
		String v = System.getenv(name);
		if (v == null)
			throw new IllegalStateException(name + " is not set");
		return v;
	}

	/* A connection to the interop database; query is appended to the URL. */
	static Connection connect(String user, String password, String query, String options) throws SQLException {
		Properties p = new Properties();
		p.setProperty("user", user);
		p.setProperty("password", password);
		p.setProperty("options", "-c statement_timeout=20s" + (options == null ? "" : " " + options));
		String url = "jdbc:postgresql://" + env("PGHOST") + ":" + env("PGPORT") + "/" + env("INTEROP_DB")
				+ (query == null ? "" : "?" + query);
		return DriverManager.getConnection(url, p);
	}

	static Connection platform(String query, String options) throws SQLException {
		return connect(env("INTEROP_USER"), env("INTEROP_PASSWORD"), query, options);
	}

	static void ok(boolean cond, String what, Object detail) {
		if (cond) {
			passed++;
			System.out.println("ok - " + what);
		} else {
			failed++;
			System.out.println("not ok - " + what + (detail == null ? "" : ": " + detail));
		}
		System.out.flush();
	}

	static void eq(Object got, Object want, String what) {
		ok(Objects.equals(got, want), what, "got " + got + ", want " + want);
	}

	/* Bind by Java type, as a provisioning rule would. */
	static void bind(PreparedStatement ps, Object... params) throws SQLException {
		for (int i = 0; i < params.length; i++) {
			Object v = params[i];
			if (v == null)
				ps.setNull(i + 1, Types.VARCHAR);
			else if (v instanceof String)
				ps.setString(i + 1, (String) v);
			else if (v instanceof Long)
				ps.setLong(i + 1, (Long) v);
			else if (v instanceof Integer)
				ps.setInt(i + 1, (Integer) v);
			else if (v instanceof Boolean)
				ps.setBoolean(i + 1, (Boolean) v);
			else
				ps.setObject(i + 1, v);
		}
	}

	/* The rows of a query, every column read with getString. */
	static List<List<String>> rows(Connection c, String sql, Object... params) throws SQLException {
		List<List<String>> out = new ArrayList<>();
		try (PreparedStatement ps = c.prepareStatement(sql)) {
			bind(ps, params);
			try (ResultSet rs = ps.executeQuery()) {
				int n = rs.getMetaData().getColumnCount();
				while (rs.next()) {
					List<String> row = new ArrayList<>();
					for (int i = 1; i <= n; i++)
						row.add(rs.getString(i));
					out.add(row);
				}
			}
		}
		return out;
	}

	static String one(Connection c, String sql, Object... params) throws SQLException {
		return rows(c, sql, params).get(0).get(0);
	}

	/* The SQLSTATE a statement fails with, or null. */
	static String state(Connection c, String sql, Object... params) {
		try {
			rows(c, sql, params);
			return null;
		} catch (SQLException e) {
			return e.getSQLState();
		}
	}

	/* Run the documented statements verbatim, each in a PreparedStatement. */
	static void documented(String file) throws Exception {
		List<String> where = new ArrayList<>();
		List<StringBuilder> sql = new ArrayList<>();
		for (String line : Files.readAllLines(Path.of(file))) {
			if (line.startsWith("@@ ")) {
				where.add(line.substring(3).trim());
				sql.add(new StringBuilder());
			} else if (!sql.isEmpty())
				sql.get(sql.size() - 1).append(line).append('\n');
		}
		try (Connection c = platform(null, null)) {
			for (int i = 0; i < sql.size(); i++) {
				String s = sql.get(i).toString().strip();
				String head = s.replaceAll("(?m)^\\s*--.*$", "").strip().toUpperCase();
				try (PreparedStatement ps = c.prepareStatement(s)) {
					if (head.startsWith("SELECT") || head.startsWith("WITH")) {
						try (ResultSet rs = ps.executeQuery()) {
							while (rs.next())
								;
						}
					} else
						ps.execute();
					ok(true, "documented statement " + where.get(i), null);
				} catch (SQLException e) {
					ok(false, "documented statement " + where.get(i), e.getSQLState() + " " + e.getMessage());
				}
			}
		}
	}

	static void scenario() throws Exception {
		Connection p = platform(null, null);

		// Enumeration with keyset paging: the last id seen, with setString.
		List<String> full = new ArrayList<>();
		for (List<String> r : rows(p, "SELECT id FROM connector.accounts('crm', NULL, 1000)"))
			full.add(r.get(0));
		List<String> paged = new ArrayList<>();
		String after = null;
		while (true) {
			List<List<String>> page = rows(p, "SELECT id, name FROM connector.accounts('crm', ?, ?)", after, 2);
			for (List<String> r : page)
				paged.add(r.get(0));
			if (page.size() < 2)
				break;
			after = page.get(page.size() - 1).get(0);
		}
		ok(full.size() >= 3, "accounts to page through", full);
		eq(paged, full, "keyset paging with setString(after) returns every account once");

		// create_account: attributes with setString.
		String ca = "SELECT connector.create_account('crm', ?, ?, ?)";
		String id = one(p, ca, "eve", "{\"email\": \"eve@example.com\", \"department\": \"Ops\"}", "it-create");
		ok(id.matches("[0-9]+"), "create_account with setString(attributes) returns the new id", id);
		eq(one(p, ca, "eve", "{\"email\": \"eve@example.com\", \"department\": \"Ops\"}", "it-create"), id,
				"a retry with the same request id returns the first outcome");
		eq(state(p, ca, "eve", "{\"email\": \"other@example.com\"}", "it-create"), "23505",
				"the same request id with other attributes: unique_violation");
		eq(state(p, ca, "eve", "{\"email\": \"eve@example.com\"}", null), "23505",
				"a blind retry without request id: unique_violation (the name exists)");
		eq(rows(p, "SELECT id, attributes->>'email', attributes->>'department' FROM connector.accounts('crm', ?, 1)",
				String.valueOf(Long.parseLong(id) - 1)), List.of(List.of(id, "eve@example.com", "Ops")),
				"the attributes are stored");

		// update_account
		String ua = "SELECT connector.update_account('crm', ?, ?, ?)";
		eq(one(p, ua, id, "{\"department\": \"Finance\"}", "it-update"), "updated", "update_account with setString(attributes)");
		eq(one(p, ua, id, "{\"department\": \"Finance\"}", "it-update"), "updated", "its retry: the first outcome");
		eq(one(p, "SELECT connector.update_account('crm', ?, ?)", id, "{\"department\": \"Finance\"}"), "unchanged",
				"update_account without request id: idempotent by state");

		// A time-bound grant: expires_at computed once, sent again on a retry.
		String g = "SELECT connector.grant('crm', ?, ?, ?, ?)";
		eq(one(p, g, id, "9", "it-grant-exp", "2099-01-01T00:00:00Z"), "granted", "grant with setString(expires_at)");
		eq(one(p, g, id, "9", "it-grant-exp", "2099-01-01T00:00:00Z"), "granted", "its retry: the first outcome");
		eq(one(p, g, id, "9", "it-grant-exp", OffsetDateTime.parse("2099-01-01T01:00+01:00")), "granted",
				"the same instant with setObject(OffsetDateTime): the same request");
		eq(state(p, g, id, "9", "it-grant-exp", "2099-01-02T00:00:00Z"), "23505",
				"another expiry under the same request id: unique_violation");
		String gn = "SELECT connector.grant('crm', ?, ?, request_id => ?)";
		eq(one(p, gn, id, "1", "it-grant"), "granted", "grant with a named request_id");
		eq(one(p, gn, id, "1", "it-grant"), "granted", "its retry: the first outcome");

		// Ids held as numbers (midPoint's Groovy): setLong / setInt and CAST(? AS text).
		eq(one(p, "SELECT connector.disable('crm', CAST(? AS text), ?)", Long.parseLong(id), "it-disable"), "disabled",
				"disable with setLong(id) and CAST(? AS text)");
		eq(one(p, "SELECT connector.enable('crm', CAST(? AS text))", Integer.parseInt(id)), "enabled",
				"enable with setInt(id) and CAST(? AS text)");
		eq(state(p, "SELECT connector.enable('crm', ?)", Long.parseLong(id)), "42883",
				"setLong(id) without the cast finds no function (ids are text)");

		// apply: the operations with setString.
		String ops = "[{\"op\": \"revoke\", \"account\": \"" + id + "\", \"entitlement\": \"1\", \"request_id\": \"it-apply\"},"
				+ " {\"op\": \"grant\", \"account\": " + id + ", \"entitlement\": \"2\"}]";
		eq(one(p, "SELECT connector.apply('crm', ?)", ops), "[\"revoked\", \"granted\"]", "apply with setString(operations)");
		eq(one(p, "SELECT connector.apply('crm', ?)", ops), "[\"revoked\", \"unchanged\"]",
				"its retry: the recorded outcome, and a grant idempotent by state");

		// reconcile: the desired state with setString.
		String rc = "SELECT action, account, entitlement FROM connector.reconcile('crm', ?)";
		eq(rows(p, rc, "{\"accounts\": [{\"id\": \"" + id + "\", \"entitlements\": [\"2\", \"9\"]}]}"), List.of(),
				"reconcile with setString(desired): no drift");
		eq(rows(p, rc, "{\"accounts\": [{\"id\": \"" + id + "\", \"entitlements\": [\"2\"]}]}"),
				List.of(List.of("revoke", id, "9")), "reconcile reports the difference");

		// The other ways of binding JSON the docs mention.
		eq(one(p, "SELECT connector.update_account('crm', ?, ?::jsonb)", id, "{\"department\": \"IT\"}"), "updated",
				"?::jsonb with setString");
		try (PreparedStatement ps = p.prepareStatement("SELECT connector.update_account('crm', ?, ?)")) {
			ps.setString(1, id);
			ps.setObject(2, "{\"department\": \"Ops\"}", Types.OTHER);
			try (ResultSet rs = ps.executeQuery()) {
				rs.next();
				eq(rs.getString(1), "updated", "setObject(json, Types.OTHER)");
			}
		}
		try (Connection u = platform("stringtype=unspecified", null)) {
			eq(one(u, "SELECT connector.update_account('crm', ?, ?)", id, "{\"department\": \"Finance\"}"), "updated",
					"stringtype=unspecified");
		}

		// offboard returns jsonb.
		String off = one(p, "SELECT connector.offboard('crm', ?, ?)", id, "it-offboard");
		ok(off.contains("\"account\": \"" + id + "\"") && off.contains("\"revoked\": [\"2\", \"9\"]")
				&& off.contains("\"disabled\": true"), "offboard returns its summary as JSON", off);

		// Errors by SQLSTATE.
		eq(state(p, "SELECT connector.grant('crm', ?, ?)", "99999", "1"), "P0002", "a missing account: no_data_found");
		eq(state(p, "SELECT connector.disable('crm', ?)", "abc"), "22P02", "an id that does not parse: 22P02");
		eq(state(p, ca, "frank", "{bad", "it-bad"), "22P02", "JSON that does not parse: 22P02");
		eq(state(p, g, id, "1", "it-bad-exp", "next week"), "22007", "a timestamp that does not parse: invalid_datetime_format");
		eq(state(p, "SELECT id FROM connector.accounts(?, NULL, 10)", "nope"), "42704",
				"an unknown application: undefined_object");
		eq(state(p, "SELECT id FROM connector.accounts('crm', NULL, ?)", 10L), "42883",
				"setLong(limit) finds no function (limit is an integer: setInt)");
		eq(state(p, "SELECT count(*) FROM connector.changes('crm', ?, ?)", -1L, 10), "22023",
				"a negative position: invalid_parameter_value");

		// The change cursor, read-write: positions with setLong.
		String ch = "SELECT position, event->>'type', event#>>'{data,origin,request_id}', event#>>'{data,expires_at}'"
				+ " FROM connector.changes('crm', ?, ?)";
		List<List<String>> events = new ArrayList<>();
		long at = 0;
		while (true) {
			List<List<String>> page = rows(p, ch, at, 50);
			events.addAll(page);
			if (page.size() < 50)
				break;
			at = Long.parseLong(page.get(page.size() - 1).get(0));
		}
		boolean contiguous = true;
		List<String> rids = new ArrayList<>();
		List<String> expiry = new ArrayList<>();
		for (int i = 0; i < events.size(); i++) {
			contiguous &= Long.parseLong(events.get(i).get(0)) == i + 1;
			rids.add(events.get(i).get(2));
			if ("it-grant-exp".equals(events.get(i).get(2)))
				expiry.add(events.get(i).get(3));
		}
		ok(contiguous && !events.isEmpty(), "changes() with setLong(after) pages through every event in order", events.size());
		ok(rids.containsAll(List.of("it-create", "it-update", "it-grant-exp", "it-grant", "it-disable", "it-apply", "it-offboard")),
				"the events of every write above are there, with their request ids", rids);
		eq(expiry, List.of("2099-01-01T00:00:00+00:00"), "the time-bound grant carries its expiry, once");
		long mid = events.size() / 2;
		eq(rows(p, ch, String.valueOf(mid), 1000), events.subList((int) mid, events.size()),
				"setString(after) gives the same page");

		// The change cursor on read-only connections, with committed events
		// that are not sealed: the sealer's lock is held, so none can be.
		Connection su = connect(env("PGUSER"), env("PGPASSWORD"), null, null);
		su.setAutoCommit(false);
		long last = Long.parseLong(one(su, "SELECT last_position FROM connector.seal_state FOR UPDATE"));
		eq(one(p, "SELECT connector.disable('crm', ?, ?)", "1", "it-read-only"), "disabled", "a write, committed");
		ok(Long.parseLong(one(su, "SELECT coalesce(sum(n), 0) FROM connector.outbox WHERE position IS NULL")) > 0,
				"committed events are waiting to be sealed", null);
		String[][] modes = {
			{"setReadOnly(true)", null, null},
			{"URL readOnly=true&readOnlyMode=always", "readOnly=true&readOnlyMode=always", null},
			{"default_transaction_read_only in options", null, "-c default_transaction_read_only=on"}};
		for (String[] m : modes) {
			try (Connection ro = platform(m[1], m[2])) {
				if (m[1] == null && m[2] == null) {
					ro.setAutoCommit(false);
					ro.setReadOnly(true);
				}
				eq(one(ro, "SHOW transaction_read_only"), "on", m[0] + ": the connection is read-only");
				for (int t = 1; t <= 2; t++) {
					try {
						List<List<String>> got = rows(ro, "SELECT position FROM connector.changes('crm', ?, ?)", 0L, 100000);
						eq(got.isEmpty() ? 0L : Long.parseLong(got.get(got.size() - 1).get(0)), last,
								m[0] + ": changes() returns the sealed events, without error (try " + t + ")");
					} catch (SQLException e) {
						ok(false, m[0] + ": changes() returns the sealed events, without error (try " + t + ")",
								e.getSQLState() + " " + e.getMessage());
					}
				}
				if (!ro.getAutoCommit())
					ro.rollback();
			}
		}
		su.rollback();
		su.close();
		boolean seen = false;
		for (List<String> r : rows(p, ch, last, 100))
			seen |= "it-read-only".equals(r.get(2));
		ok(seen, "a read-write changes() then seals and returns the new event", null);
		p.close();
	}

	public static void main(String[] args) throws Exception {
		documented(args[0]);
		try {
			scenario();
		} catch (Exception e) {
			ok(false, "the scenario ran to its end", e);
			e.printStackTrace(System.out);
		}
		System.exit(failed > 0 ? 1 : 0);
	}
}
