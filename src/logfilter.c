/*-------------------------------------------------------------------------
 *
 * logfilter.c
 *	  Keep webhook secrets and SCIM bearer tokens out of the server log.
 *
 * add_endpoint and rotate_secret take a secret as an argument, and
 * scim_session a bearer token, so the text of a statement that calls them
 * usually holds it.  PostgreSQL writes statement
 * text to the server log in several places: the STATEMENT line of an error
 * (log_min_error_statement), the LOG lines of log_statement and
 * log_min_duration_statement (with the bind parameters of the extended
 * protocol in their detail), and the parameter values of
 * log_parameter_max_length_on_error in an error's context.  A failure before
 * the function body runs (a malformed jsonb or interval literal, a missing
 * EXECUTE privilege) is out of reach of the functions' own SET clauses, so
 * the filter sits in emit_log_hook, which sees every message bound for the
 * server log, and costs nothing unless a message is written.
 *
 * A statement is treated as holding a secret when its text mentions
 * add_endpoint, rotate_secret, scim_session, whsec_ or ctk_ in any letter
 * case; this also
 * catches quoted and schema-qualified names.  For such a statement the
 * STATEMENT line is suppressed, and these keep their shape with every string
 * literal and comment replaced by ***: the statement text quoted in a message
 * (log_statement, log_min_duration_statement, auto_explain), a literal quoted
 * by a syntax error, the detail (bind parameters), the context (parameters,
 * inner statements of a DO block) and an internal query that mentions a
 * secret.  Independently of the statement, anything that looks like a secret
 * (whsec_ followed by base64) or a bearer token (ctk_ followed by base64url)
 * is cut down to "whsec_***" or "ctk_***" in every message.
 *
 * elog.c documents only output_to_server as writable by the hook, but reads
 * every field after the hook returns (PostgreSQL 15); test/t/030_log_secrets.pl
 * would notice if that changed.
 *
 * IDENTIFICATION
 *	  src/logfilter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "connector.h"

#define REDACTED "***"

static emit_log_hook_type prev_emit_log_hook = NULL;

static void ConnectorEmitLog(ErrorData *edata);
static bool ConnectorTextMayHoldSecret(const char *text);
static char *ReplaceAll(const char *text, const char *needle,
						const char *replacement);

/*
 * Install the filter, keeping any hook installed before us: it runs after
 * ours, so it never sees a secret either.
 */
void
ConnectorLogFilterInit(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = ConnectorEmitLog;
}

/*
 * Does text at p start with word, in any letter case?
 */
static bool
StartsWithCI(const char *p, const char *word)
{
	return pg_strncasecmp(p, word, strlen(word)) == 0;
}

/*
 * Whether text mentions one of the functions that take a secret, or a
 * secret itself.  One pass: every name sought has an underscore at a fixed
 * place, so only the characters around underscores are compared.
 */
static bool
ConnectorTextMayHoldSecret(const char *text)
{
	const char *start = text;
	const char *p = text;

	while ((p = strchr(p, '_')) != NULL)
	{
		if ((p - start >= 3 && StartsWithCI(p - 3, "add_endpoint")) ||
			(p - start >= 6 && StartsWithCI(p - 6, "rotate_secret")) ||
			(p - start >= 4 && StartsWithCI(p - 4, "scim_session")) ||
			(p - start >= 5 && StartsWithCI(p - 5, "whsec_")) ||
			(p - start >= 3 && StartsWithCI(p - 3, "ctk_")))
			return true;
		p++;
	}
	return false;
}

/*
 * Can c continue an SQL identifier?  A dollar sign inside an identifier does
 * not open a dollar quote.
 */
static bool
IsIdentChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '$' || IS_HIGHBIT_SET(c);
}

/*
 * Length of the dollar-quote tag ($$ or $tag$) starting at p, 0 when p does
 * not start one.
 */
static int
DollarTagLength(const char *p)
{
	const char *q = p + 1;

	if (*q == '$')
		return 2;
	if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
		  IS_HIGHBIT_SET(*q)))
		return 0;
	while (IsIdentChar(*q) && *q != '$')
		q++;
	return *q == '$' ? (int) (q - p + 1) : 0;
}

typedef enum SqlSpanKind
{
	SPAN_LITERAL,				/* '...', E'...', $tag$...$tag$ */
	SPAN_COMMENT,				/* -- ... and nested block comments */
	SPAN_IDENTIFIER				/* "..." */
} SqlSpanKind;

/*
 * If a string literal, a comment or a quoted identifier starts at p (inside
 * SQL text starting at text), return where it ends, just after its closing
 * delimiter, and set *kind and the lengths of its opening and closing
 * delimiters; return NULL otherwise.  An unterminated span ends at the end
 * of the text, with a closing delimiter of length 0.
 *
 * The lexer's rules are followed where a mistake would reveal text: a quote
 * inside a quoted identifier starts nothing; backslash escapes count only in
 * E'' strings or with standard_conforming_strings off; a dollar sign inside
 * an identifier opens no dollar quote; block comments nest.  The letters of
 * E'', U&'', B'' and X'' are not part of the span.  In text that is not SQL
 * (sql false: a context or detail line, which quotes SQL and values between
 * double quotes) double quotes start nothing, so nothing inside them is
 * let through.
 */
static const char *
SqlSpanAt(const char *text, const char *p, bool sql, SqlSpanKind *kind,
		  int *openlen, int *closelen)
{
	*closelen = 0;
	if (*p == '\'')
	{
		/* E'...': a lone E or e before the quote, not ending a word */
		bool		escapes = !standard_conforming_strings ||
			(p > text && (p[-1] == 'E' || p[-1] == 'e') &&
			 (p - 1 == text || !IsIdentChar(p[-2])));

		*kind = SPAN_LITERAL;
		*openlen = 1;
		for (p++; *p; p++)
		{
			if (escapes && *p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '\'' && p[1] == '\'')
				p++;
			else if (*p == '\'')
			{
				*closelen = 1;
				return p + 1;
			}
		}
		return p;
	}
	if (*p == '"' && sql)
	{
		*kind = SPAN_IDENTIFIER;
		*openlen = 1;
		for (p++; *p; p++)
		{
			if (*p == '"' && p[1] == '"')
				p++;
			else if (*p == '"')
			{
				*closelen = 1;
				return p + 1;
			}
		}
		return p;
	}
	if (*p == '$' && (p == text || !IsIdentChar(p[-1])) &&
		DollarTagLength(p) > 0)
	{
		int			taglen = DollarTagLength(p);
		const char *end = p + taglen;

		*kind = SPAN_LITERAL;
		*openlen = taglen;
		while ((end = strchr(end, '$')) != NULL && strncmp(end, p, taglen) != 0)
			end++;
		if (end == NULL)
			return p + strlen(p);
		*closelen = taglen;
		return end + taglen;
	}
	if (p[0] == '-' && p[1] == '-')
	{
		const char *nl = strchr(p, '\n');

		*kind = SPAN_COMMENT;
		*openlen = 2;
		return nl ? nl : p + strlen(p);
	}
	if (p[0] == '/' && p[1] == '*')
	{
		int			depth = 1;

		*kind = SPAN_COMMENT;
		*openlen = 2;
		for (p += 2; *p; p++)
		{
			if (p[0] == '/' && p[1] == '*')
			{
				depth++;
				p++;
			}
			else if (p[0] == '*' && p[1] == '/')
			{
				p++;
				if (--depth == 0)
				{
					*closelen = 2;
					return p + 1;
				}
			}
		}
		return p;
	}
	return NULL;
}

/*
 * Append a literal or comment span to out with its contents replaced.
 */
static void
AppendRedactedSpan(StringInfo out, const char *start, const char *end,
				   SqlSpanKind kind, int openlen, int closelen)
{
	appendBinaryStringInfo(out, start, openlen);
	appendStringInfoString(out,
						   kind == SPAN_COMMENT ? " " REDACTED " " : REDACTED);
	appendBinaryStringInfo(out, end - closelen, closelen);
}

/*
 * A copy of text with the contents of every string literal and comment
 * replaced by ***: the shape of a statement stays readable in the log (which
 * function, which syntax), its values do not.  An unterminated literal or
 * comment hides everything after its start.  sql: see SqlSpanAt.
 */
static char *
RedactLiterals(const char *text, bool sql)
{
	StringInfoData out;
	const char *p = text;

	initStringInfo(&out);
	while (*p)
	{
		SqlSpanKind kind;
		int			openlen;
		int			closelen;
		const char *end = SqlSpanAt(text, p, sql, &kind, &openlen, &closelen);

		if (end == NULL)
			appendStringInfoChar(&out, *p++);
		else
		{
			if (kind == SPAN_IDENTIFIER)
				appendBinaryStringInfo(&out, p, end - p);
			else
				AppendRedactedSpan(&out, p, end, kind, openlen, closelen);
			p = end;
		}
	}
	return out.data;
}

/*
 * message with every string literal of the statement stmt that it quotes
 * whole (as a syntax error quotes the token it stopped at, or the rest of
 * the input after an unterminated literal) replaced by its redacted form.
 * Returns message itself when it quotes none.
 */
static char *
RedactQuotedLiterals(char *message, const char *stmt)
{
	const char *p = stmt;

	while (*p)
	{
		SqlSpanKind kind;
		int			openlen;
		int			closelen;
		const char *end = SqlSpanAt(stmt, p, true, &kind, &openlen, &closelen);

		if (end == NULL)
		{
			p++;
			continue;
		}
		if (kind == SPAN_LITERAL)
		{
			char	   *raw = pnstrdup(p, end - p);

			if (strstr(message, raw) != NULL)
			{
				StringInfoData redacted;

				initStringInfo(&redacted);
				AppendRedactedSpan(&redacted, p, end, kind, openlen, closelen);
				message = ReplaceAll(message, raw, redacted.data);
				pfree(redacted.data);
			}
			pfree(raw);
		}
		p = end;
	}
	return message;
}

/*
 * A copy of text with every occurrence of needle replaced by replacement.
 */
static char *
ReplaceAll(const char *text, const char *needle, const char *replacement)
{
	StringInfoData out;
	size_t		len = strlen(needle);
	const char *p = text;
	const char *hit;

	initStringInfo(&out);
	while ((hit = strstr(p, needle)) != NULL)
	{
		appendBinaryStringInfo(&out, p, hit - p);
		appendStringInfoString(&out, replacement);
		p = hit + len;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/*
 * Can c be part of a base64 secret (standard or URL-safe alphabet)?
 */
static bool
IsSecretChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=' ||
		c == '-' || c == '_';
}

/*
 * text with everything that looks like a secret ("whsec_" in any case,
 * then at least one base64 character) or a bearer token ("ctk_", then at
 * least one base64url character) cut down to "whsec_***" or "ctk_***"; NULL
 * when there is none, so that the common case allocates nothing.
 */
static char *
ScrubSecrets(const char *text)
{
	StringInfoData out;
	const char *p = text;
	const char *copied = text;
	bool		found = false;

	while ((p = strchr(p, '_')) != NULL)
	{
		if (((p - text >= 5 && StartsWithCI(p - 5, "whsec_")) ||
			 (p - text >= 3 && StartsWithCI(p - 3, "ctk_"))) &&
			IsSecretChar(p[1]))
		{
			if (!found)
				initStringInfo(&out);
			found = true;
			appendBinaryStringInfo(&out, copied, p + 1 - copied);
			appendStringInfoString(&out, REDACTED);
			p++;
			while (IsSecretChar(*p))
				p++;
			copied = p;
		}
		else
			p++;
	}
	if (!found)
		return NULL;
	appendStringInfoString(&out, copied);
	return out.data;
}

/*
 * Cut secrets out of one field of a message, in place.
 */
static void
ScrubField(char **field)
{
	char	   *scrubbed;

	if (*field == NULL)
		return;
	scrubbed = ScrubSecrets(*field);
	if (scrubbed != NULL)
		*field = scrubbed;
}

/*
 * emit_log_hook: runs for every message bound for the server log, before it
 * is written, in the error's memory context.  The fields it replaces are
 * also what the client receives, which is what the spec asks for: no
 * secret in an error either.  The old strings are left to the error
 * context's reset.
 */
static void
ConnectorEmitLog(ErrorData *edata)
{
	const char *stmt = debug_query_string;

	if (stmt != NULL && stmt[0] != '\0' && ConnectorTextMayHoldSecret(stmt))
	{
		char	   *redacted = NULL;

		edata->hide_stmt = true;

		/* statement: ..., duration: ... statement: ..., execute ...: ... */
		if (edata->message != NULL && strstr(edata->message, stmt) != NULL)
		{
			redacted = RedactLiterals(stmt, true);
			edata->message = ReplaceAll(edata->message, stmt, redacted);
		}
		/* syntax error at or near "'...'", unterminated quoted string ... */
		else if (edata->message != NULL &&
				 (strchr(edata->message, '\'') != NULL ||
				  strchr(edata->message, '$') != NULL))
			edata->message = RedactQuotedLiterals(edata->message, stmt);
		/* Parameters: $1 = '...' of the extended protocol */
		if (edata->detail != NULL)
			edata->detail = RedactLiterals(edata->detail, false);
		if (edata->detail_log != NULL)
			edata->detail_log = RedactLiterals(edata->detail_log, false);
		/* SQL statement "...", log_parameter_max_length_on_error's values */
		if (edata->context != NULL)
			edata->context = RedactLiterals(edata->context, false);
		if (edata->internalquery != NULL &&
			ConnectorTextMayHoldSecret(edata->internalquery))
		{
			edata->internalquery = RedactLiterals(edata->internalquery, true);
			edata->internalpos = 0;
		}
		if (redacted != NULL)
			pfree(redacted);
	}

	ScrubField(&edata->message);
	ScrubField(&edata->detail);
	ScrubField(&edata->detail_log);
	ScrubField(&edata->hint);
	ScrubField(&edata->context);
	ScrubField(&edata->internalquery);

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}
