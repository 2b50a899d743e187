/*-------------------------------------------------------------------------
 *
 * filter.c
 *	  The RFC 7644 section 3.4.2.2 filter grammar and PATCH paths: parsing,
 *	  the SCIM attribute names (case-insensitive), evaluation on one
 *	  multi-valued element (PATCH value filters), and translation of a
 *	  list filter into the extension's filter AST through the mapping.
 *	  The AST is compiled by the extension; nothing here builds SQL.
 *
 * IDENTIFICATION
 *	  gateway/filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TERMS 1000

/* The SCIM attributes the gateway knows, by parent ("" = top level). */
typedef struct SchemaAttr
{
	const char *parent;
	const char *name;
	bool		users;			/* User (true) or Group (false) */
} SchemaAttr;

static const SchemaAttr schema_attrs[] = {
	{"", "schemas", true}, {"", "id", true}, {"", "externalId", true}, {"", "userName", true},
	{"", "name", true}, {"", "displayName", true}, {"", "nickName", true},
	{"", "profileUrl", true}, {"", "title", true}, {"", "userType", true},
	{"", "preferredLanguage", true}, {"", "locale", true}, {"", "timezone", true},
	{"", "active", true}, {"", "password", true}, {"", "emails", true},
	{"", "phoneNumbers", true}, {"", "ims", true}, {"", "photos", true},
	{"", "addresses", true}, {"", "groups", true}, {"", "entitlements", true},
	{"", "roles", true}, {"", "x509Certificates", true}, {"", "meta", true},
	{"", SCIM_ENTERPRISE, true},
	{"name", "formatted", true}, {"name", "familyName", true}, {"name", "givenName", true},
	{"name", "middleName", true}, {"name", "honorificPrefix", true},
	{"name", "honorificSuffix", true},
	{"*", "value", true}, {"*", "display", true}, {"*", "type", true},
	{"*", "primary", true}, {"*", "$ref", true},
	{"addresses", "formatted", true}, {"addresses", "streetAddress", true},
	{"addresses", "locality", true}, {"addresses", "region", true},
	{"addresses", "postalCode", true}, {"addresses", "country", true},
	{"addresses", "type", true}, {"addresses", "primary", true},
	{"meta", "resourceType", true}, {"meta", "created", true},
	{"meta", "lastModified", true}, {"meta", "location", true}, {"meta", "version", true},
	{SCIM_ENTERPRISE, "employeeNumber", true}, {SCIM_ENTERPRISE, "costCenter", true},
	{SCIM_ENTERPRISE, "organization", true}, {SCIM_ENTERPRISE, "division", true},
	{SCIM_ENTERPRISE, "department", true}, {SCIM_ENTERPRISE, "manager", true},
	{"manager", "value", true}, {"manager", "$ref", true}, {"manager", "displayName", true},
	{"", "schemas", false}, {"", "id", false}, {"", "externalId", false},
	{"", "displayName", false}, {"", "members", false}, {"", "meta", false},
	{"members", "value", false}, {"members", "display", false}, {"members", "type", false},
	{"members", "$ref", false},
	{"meta", "resourceType", false}, {"meta", "created", false},
	{"meta", "lastModified", false}, {"meta", "location", false}, {"meta", "version", false},
	{NULL, NULL, false}
};

/*
 * The canonical spelling of a SCIM attribute name (names are
 * case-insensitive), or NULL when the schema has no such attribute.
 * parent is "" for top-level names, else the parent's canonical name.
 */
const char *
schema_canonical(const char *parent, const char *name, bool users)
{
	bool		multi = false;

	if (parent[0] != '\0' && strcmp(parent, "name") != 0 && strcmp(parent, "addresses") != 0 &&
		strcmp(parent, "meta") != 0 && strcmp(parent, SCIM_ENTERPRISE) != 0 &&
		strcmp(parent, "manager") != 0 && strcmp(parent, "members") != 0)
		multi = true;
	for (const SchemaAttr *a = schema_attrs; a->name; a++)
	{
		if (a->users != users && strcmp(a->parent, "*") != 0)
			continue;
		if (strcmp(a->parent, "*") == 0 ? !(multi && users) : strcmp(a->parent, parent) != 0)
			continue;
		if (strcasecmp(a->name, name) == 0)
			return a->name;
	}
	return NULL;
}

/* Look up a member of a JSON object case-insensitively. */
json_t *
attr_get(json_t *obj, const char *name)
{
	const char *k;
	json_t	   *v;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, name);
	if (v)
		return v;
	json_object_foreach(obj, k, v)
		if (strcasecmp(k, name) == 0)
		return v;
	return NULL;
}

/* ---- parsing ---- */

typedef struct Parser
{
	const char *s;
	size_t		pos;
	int			depth;
	int			terms;
	char	   *err;
} Parser;

static void
perr(Parser *p, const char *msg)
{
	if (p->err == NULL)
	{
		char		buf[200];

		snprintf(buf, sizeof(buf), "%s at position %zu", msg, p->pos + 1);
		p->err = strdup(buf);
	}
}

static void
skip_ws(Parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
		   p->s[p->pos] == '\r')
		p->pos++;
}

/* Does a keyword (and, or, not, an operator) start here, followed by a delimiter? */
static bool
keyword(Parser *p, const char *kw)
{
	size_t		n = strlen(kw);
	char		c;

	if (strncasecmp(p->s + p->pos, kw, n) != 0)
		return false;
	c = p->s[p->pos + n];
	if (c == '\0' || c == ' ' || c == '\t' || c == '(' || c == ')' || c == '[' || c == ']' ||
		c == '"')
	{
		p->pos += n;
		return true;
	}
	return false;
}

static bool
is_attr_char(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '-' || c == '$' || c == ':' || c == '.';
}

static char *
xstrndup(const char *s, size_t n)
{
	char	   *r = malloc(n + 1);

	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

/*
 * Split an attribute path token into schema URN, attribute and
 * sub-attribute: "urn:…:enterprise:2.0:User:manager.value" gives the URN,
 * "manager" and "value"; "name.givenName" gives NULL, "name", "givenName".
 */
static bool
split_attr(const char *tok, size_t len, char **schema, char **attr, char **sub)
{
	const char *a = tok;
	size_t		alen = len;
	const char *dot;

	*schema = *attr = *sub = NULL;
	if (len >= 4 && strncasecmp(tok, "urn:", 4) == 0)
	{
		const char *urns[] = {SCIM_ENTERPRISE, SCIM_USER, SCIM_GROUP, NULL};
		const char *colon = NULL;

		for (int i = 0; urns[i]; i++)
		{
			size_t		ul = strlen(urns[i]);

			if (len >= ul && strncasecmp(tok, urns[i], ul) == 0 && (len == ul || tok[ul] == ':'))
			{
				colon = tok + ul;
				break;
			}
		}
		if (colon == NULL)
		{
			/* an unknown schema: the attribute follows the last colon */
			for (const char *c = tok + len - 1; c > tok; c--)
				if (*c == ':')
				{
					colon = c;
					break;
				}
		}
		*schema = xstrndup(tok, colon - tok);
		if (colon == tok + len)
			return true;		/* the URN alone */
		a = colon + 1;
		alen = len - (a - tok);
	}
	if (alen == 0)
		return false;
	dot = memchr(a, '.', alen);
	if (dot)
	{
		if (dot == a || dot == a + alen - 1 || memchr(dot + 1, '.', a + alen - dot - 1))
			return false;
		*attr = xstrndup(a, dot - a);
		*sub = xstrndup(dot + 1, a + alen - dot - 1);
	}
	else
		*attr = xstrndup(a, alen);
	if (strchr(*attr, ':') || (*sub && strchr(*sub, ':')))
		return false;
	return true;
}

static FNode *parse_or(Parser *p);

/* A comparison value: true, false, null, a number or a JSON string. */
static json_t *
parse_value(Parser *p)
{
	const char *s = p->s + p->pos;
	json_error_t jerr;
	json_t	   *v;
	size_t		n = 0;

	if (*s == '"')
	{
		n = 1;
		while (s[n] && s[n] != '"')
		{
			if (s[n] == '\\' && s[n + 1])
				n++;
			n++;
		}
		if (s[n] != '"')
		{
			perr(p, "unterminated string");
			return NULL;
		}
		n++;
	}
	else
		while (s[n] && (isalnum((unsigned char) s[n]) || s[n] == '-' || s[n] == '+' || s[n] == '.'))
			n++;
	if (n == 0)
	{
		perr(p, "expected a value");
		return NULL;
	}
	v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (v == NULL || json_is_object(v) || json_is_array(v))
	{
		json_decref(v);
		perr(p, "invalid value (expected a string, number, true, false or null)");
		return NULL;
	}
	p->pos += n;
	return v;
}

static const char *const ops[] = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", NULL};

/* An operator after an attribute path; "" when none follows. */
static bool
parse_op(Parser *p, char *op, bool required)
{
	size_t		save = p->pos;

	skip_ws(p);
	for (int i = 0; ops[i]; i++)
		if (keyword(p, ops[i]))
		{
			strcpy(op, ops[i]);
			return true;
		}
	p->pos = save;
	op[0] = '\0';
	if (required)
		perr(p, "expected an operator (eq ne co sw ew gt ge lt le pr)");
	return !required;
}

static FNode *
new_node(Parser *p, FKind kind)
{
	FNode	   *n = calloc(1, sizeof(FNode));

	n->kind = kind;
	if (++p->terms > MAX_TERMS)
		perr(p, "filter too complex");
	return n;
}

/* attrPath op value | attrPath pr | attrPath[filter][.sub [op value]] */
static FNode *
parse_attr_expr(Parser *p)
{
	size_t		start = p->pos;
	FNode	   *n;

	while (is_attr_char(p->s[p->pos]))
		p->pos++;
	if (p->pos == start)
	{
		perr(p, "expected an attribute name");
		return NULL;
	}
	n = new_node(p, F_CMP);
	if (!split_attr(p->s + start, p->pos - start, &n->schema, &n->attr, &n->sub) || n->attr == NULL)
	{
		p->pos = start;
		perr(p, "invalid attribute path");
		return n;
	}
	if (p->s[p->pos] == '[')
	{
		if (n->sub)
		{
			perr(p, "a value filter follows the multi-valued attribute itself");
			return n;
		}
		n->kind = F_VALPATH;
		p->pos++;
		if (++p->depth > GW_FILTER_DEPTH)
		{
			perr(p, "filter nested too deeply");
			return n;
		}
		n->inner = parse_or(p);
		p->depth--;
		if (p->err)
			return n;
		skip_ws(p);
		if (p->s[p->pos] != ']')
		{
			perr(p, "expected ]");
			return n;
		}
		p->pos++;
		if (p->s[p->pos] == '.')
		{
			size_t		s2 = ++p->pos;

			while (isalnum((unsigned char) p->s[p->pos]) || p->s[p->pos] == '_' || p->s[p->pos] == '$')
				p->pos++;
			if (p->pos == s2)
			{
				perr(p, "expected a sub-attribute");
				return n;
			}
			n->sub = xstrndup(p->s + s2, p->pos - s2);
			if (!parse_op(p, n->op, true))
				return n;
		}
		else if (!parse_op(p, n->op, false))
			return n;
	}
	else if (!parse_op(p, n->op, true))
		return n;
	if (n->op[0] && strcmp(n->op, "pr") != 0)
	{
		skip_ws(p);
		n->value = parse_value(p);
		if (n->value && (json_is_boolean(n->value) || json_is_null(n->value)) &&
			(n->op[0] == 'g' || n->op[0] == 'l' || strcmp(n->op, "co") == 0 ||
			 strcmp(n->op, "sw") == 0 || strcmp(n->op, "ew") == 0))
			perr(p, "operator needs a string or number value");
	}
	return n;
}

/* not (filter) | (filter) | attribute expression */
static FNode *
parse_unary(Parser *p)
{
	skip_ws(p);
	if (keyword(p, "not"))
	{
		FNode	   *n = new_node(p, F_NOT);

		skip_ws(p);
		if (p->s[p->pos] != '(')
		{
			perr(p, "expected ( after not");
			return n;
		}
		n->kids = calloc(1, sizeof(FNode *));
		n->nkids = 1;
		n->kids[0] = parse_unary(p);
		return n;
	}
	if (p->s[p->pos] == '(')
	{
		FNode	   *n;

		p->pos++;
		if (++p->depth > GW_FILTER_DEPTH)
		{
			perr(p, "filter nested too deeply");
			return NULL;
		}
		n = parse_or(p);
		p->depth--;
		if (p->err)
			return n;
		skip_ws(p);
		if (p->s[p->pos] != ')')
		{
			perr(p, "expected )");
			return n;
		}
		p->pos++;
		return n;
	}
	return parse_attr_expr(p);
}

/* A chain of one operator ("and" binds tighter than "or"). */
static FNode *
parse_chain(Parser *p, FKind kind)
{
	FNode	   *first = kind == F_OR ? parse_chain(p, F_AND) : parse_unary(p);
	FNode	   *n = NULL;

	while (p->err == NULL)
	{
		size_t		save = p->pos;

		skip_ws(p);
		if (!keyword(p, kind == F_OR ? "or" : "and"))
		{
			p->pos = save;
			break;
		}
		if (n == NULL)
		{
			n = new_node(p, kind);
			n->kids = malloc(sizeof(FNode *) * 4);
			n->kids[n->nkids++] = first;
		}
		if ((n->nkids & (n->nkids - 1)) == 0 && n->nkids >= 4)
			n->kids = realloc(n->kids, sizeof(FNode *) * n->nkids * 2);
		n->kids[n->nkids++] = kind == F_OR ? parse_chain(p, F_AND) : parse_unary(p);
	}
	return n ? n : first;
}

static FNode *
parse_or(Parser *p)
{
	return parse_chain(p, F_OR);
}

/* Parse a whole filter; NULL with *errmsg (malloc'd) when it is not one. */
FNode *
filter_parse(const char *text, char **errmsg)
{
	Parser		p = {text, 0, 0, 0, NULL};
	FNode	   *n = parse_or(&p);

	if (p.err == NULL)
	{
		skip_ws(&p);
		if (p.s[p.pos] != '\0')
			perr(&p, "unexpected text");
	}
	if (p.err)
	{
		filter_free(n);
		*errmsg = p.err;
		return NULL;
	}
	*errmsg = NULL;
	return n;
}

void
filter_free(FNode *n)
{
	if (n == NULL)
		return;
	for (int i = 0; i < n->nkids; i++)
		filter_free(n->kids[i]);
	free(n->kids);
	filter_free(n->inner);
	free(n->schema);
	free(n->attr);
	free(n->sub);
	json_decref(n->value);
	free(n);
}

/*
 * A PATCH path: attrPath, attrPath[valFilter], attrPath[valFilter].sub, or
 * a schema URN alone.
 */
ScimPath *
path_parse(const char *text, char **errmsg)
{
	Parser		p = {text, 0, 0, 0, NULL};
	ScimPath   *sp = calloc(1, sizeof(ScimPath));
	size_t		start;

	skip_ws(&p);
	start = p.pos;
	while (is_attr_char(p.s[p.pos]))
		p.pos++;
	if (p.pos == start ||
		!split_attr(p.s + start, p.pos - start, &sp->schema, &sp->attr, &sp->sub))
		perr(&p, "invalid attribute path");
	else if (p.s[p.pos] == '[')
	{
		if (sp->sub || sp->attr == NULL)
			perr(&p, "a value filter follows the multi-valued attribute itself");
		else
		{
			p.pos++;
			p.depth = 1;
			sp->filter = parse_or(&p);
			skip_ws(&p);
			if (p.err == NULL && p.s[p.pos] != ']')
				perr(&p, "expected ]");
			else if (p.err == NULL)
			{
				p.pos++;
				if (p.s[p.pos] == '.')
				{
					size_t		s2 = ++p.pos;

					while (isalnum((unsigned char) p.s[p.pos]) || p.s[p.pos] == '_' ||
						   p.s[p.pos] == '$')
						p.pos++;
					if (p.pos == s2)
						perr(&p, "expected a sub-attribute");
					else
						sp->sub = xstrndup(p.s + s2, p.pos - s2);
				}
			}
		}
	}
	if (p.err == NULL)
	{
		skip_ws(&p);
		if (p.s[p.pos] != '\0')
			perr(&p, "unexpected text");
	}
	if (p.err)
	{
		path_free(sp);
		*errmsg = p.err;
		return NULL;
	}
	*errmsg = NULL;
	return sp;
}

void
path_free(ScimPath *sp)
{
	if (sp == NULL)
		return;
	free(sp->schema);
	free(sp->attr);
	free(sp->sub);
	filter_free(sp->filter);
	free(sp);
}

/* ---- evaluation on one element (PATCH value filters) ---- */

static bool
str_ci_prefix(const char *s, const char *pre)
{
	return strncasecmp(s, pre, strlen(pre)) == 0;
}

static bool
str_ci_contains(const char *s, const char *needle)
{
	size_t		n = strlen(needle);

	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return true;
	return n == 0;
}

/* Compare one attribute value with a filter value under op. */
static bool
compare(json_t *v, const char *op, json_t *want)
{
	if (strcmp(op, "pr") == 0)
		return v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0) &&
			!(json_is_array(v) && json_array_size(v) == 0);
	if (v == NULL || json_is_null(v))
		return (strcmp(op, "eq") == 0 && json_is_null(want)) ||
			(strcmp(op, "ne") == 0 && !json_is_null(want));
	if (json_is_string(v) && json_is_string(want))
	{
		const char *a = json_string_value(v),
				   *b = json_string_value(want);
		size_t		la = strlen(a),
					lb = strlen(b);
		int			c = strcasecmp(a, b);

		if (strcmp(op, "eq") == 0)
			return c == 0;
		if (strcmp(op, "ne") == 0)
			return c != 0;
		if (strcmp(op, "co") == 0)
			return str_ci_contains(a, b);
		if (strcmp(op, "sw") == 0)
			return str_ci_prefix(a, b);
		if (strcmp(op, "ew") == 0)
			return la >= lb && strcasecmp(a + la - lb, b) == 0;
		if (strcmp(op, "gt") == 0)
			return c > 0;
		if (strcmp(op, "ge") == 0)
			return c >= 0;
		if (strcmp(op, "lt") == 0)
			return c < 0;
		if (strcmp(op, "le") == 0)
			return c <= 0;
		return false;
	}
	if (json_is_number(v) && json_is_number(want))
	{
		double		a = json_number_value(v),
					b = json_number_value(want);

		if (strcmp(op, "eq") == 0)
			return a == b;
		if (strcmp(op, "ne") == 0)
			return a != b;
		if (strcmp(op, "gt") == 0)
			return a > b;
		if (strcmp(op, "ge") == 0)
			return a >= b;
		if (strcmp(op, "lt") == 0)
			return a < b;
		if (strcmp(op, "le") == 0)
			return a <= b;
		return false;
	}
	/* booleans (Entra writes them as strings too) */
	if (json_is_boolean(v) || json_is_boolean(want))
	{
		int			a = json_is_boolean(v) ? json_is_true(v) :
			json_is_string(v) ? (strcasecmp(json_string_value(v), "true") == 0 ? 1 :
								 strcasecmp(json_string_value(v), "false") == 0 ? 0 : -1) : -1;
		int			b = json_is_boolean(want) ? json_is_true(want) :
			json_is_string(want) ? (strcasecmp(json_string_value(want), "true") == 0 ? 1 :
									strcasecmp(json_string_value(want), "false") == 0 ? 0 : -1) : -1;

		if (strcmp(op, "eq") == 0)
			return a >= 0 && a == b;
		if (strcmp(op, "ne") == 0)
			return !(a >= 0 && a == b);
		return false;
	}
	/* a number against a string (ids): compare the text */
	if (json_is_number(v) || json_is_number(want))
	{
		char	   *a = json_dumps(v, JSON_ENCODE_ANY),
				   *b = json_is_string(want) ? strdup(json_string_value(want)) : json_dumps(want, JSON_ENCODE_ANY);
		bool		r = false;

		if (a && b)
			r = strcmp(op, "eq") == 0 ? strcmp(a, b) == 0 : strcmp(op, "ne") == 0 ? strcmp(a, b) != 0 : false;
		if (json_is_string(v))
		{
			free(a);
			a = strdup(json_string_value(v));
			r = strcmp(op, "eq") == 0 ? strcmp(a, b) == 0 : strcmp(op, "ne") == 0 ? strcmp(a, b) != 0 : false;
		}
		free(a);
		free(b);
		return r;
	}
	return strcmp(op, "ne") == 0;
}

/*
 * Does one element of a multi-valued attribute (an object such as
 * {"value": "42", "type": "work"}) match the filter?  Used for PATCH paths
 * like members[value eq "42"] and emails[type eq "work"].value.
 */
bool
filter_match(const FNode *n, json_t *elem)
{
	json_t	   *v;

	switch (n->kind)
	{
		case F_AND:
			for (int i = 0; i < n->nkids; i++)
				if (!filter_match(n->kids[i], elem))
					return false;
			return true;
		case F_OR:
			for (int i = 0; i < n->nkids; i++)
				if (filter_match(n->kids[i], elem))
					return true;
			return false;
		case F_NOT:
			return !filter_match(n->kids[0], elem);
		case F_CMP:
			v = attr_get(elem, n->attr);
			if (n->sub)
				v = attr_get(v, n->sub);
			if (!json_is_object(elem) && n->sub == NULL && strcasecmp(n->attr, "value") == 0)
				v = elem;		/* a bare value in the array */
			return compare(v, n->op, n->value);
		case F_VALPATH:
			{
				json_t	   *arr = attr_get(elem, n->attr);
				size_t		i;
				json_t	   *e;

				json_array_foreach(arr, i, e)
					if (filter_match(n->inner, e) &&
						(n->op[0] == '\0' || compare(attr_get(e, n->sub ? n->sub : "value"), n->op, n->value)))
					return true;
				return false;
			}
	}
	return false;
}

/* ---- translation into the extension's filter AST ---- */

/*
 * Constants during translation: json_true() and json_false() stand for a
 * condition known without the database (an unmapped attribute is absent,
 * so any comparison with it is false); they are folded away.
 */
static json_t *
ast_cmp(const char *attr, const char *op, json_t *value, bool ci)
{
	json_t	   *o = json_object();

	/* eq null / ne null: presence */
	if (value && json_is_null(value) && (strcmp(op, "eq") == 0 || strcmp(op, "ne") == 0))
	{
		json_object_set_new(o, "attr", json_string(attr));
		json_object_set_new(o, "op", json_string("pr"));
		return strcmp(op, "eq") == 0 ? json_pack("{s:o}", "not", o) : o;
	}
	json_object_set_new(o, "attr", json_string(attr));
	json_object_set_new(o, "op", json_string(op));
	if (value && strcmp(op, "pr") != 0)
		json_object_set(o, "value", value);
	json_object_set_new(o, "ci", json_boolean(ci && value && json_is_string(value)));
	return o;
}

static json_t *
ast_not(json_t *a)
{
	if (json_is_true(a))
		return json_false();
	if (json_is_false(a))
		return json_true();
	return json_pack("{s:o}", "not", a);
}

/* Fold a list of operands of and/or. */
static json_t *
ast_join(const char *kind, json_t *list)
{
	bool		is_and = strcmp(kind, "and") == 0;
	json_t	   *out = json_array();
	size_t		i;
	json_t	   *e;

	json_array_foreach(list, i, e)
	{
		if (json_is_boolean(e))
		{
			if (json_is_true(e) != is_and)
			{
				json_decref(out);
				json_decref(list);
				return json_boolean(!is_and);
			}
			continue;
		}
		json_array_append(out, e);
	}
	json_decref(list);
	if (json_array_size(out) == 0)
	{
		json_decref(out);
		return json_boolean(is_and);
	}
	if (json_array_size(out) == 1)
	{
		json_t	   *one = json_incref(json_array_get(out, 0));

		json_decref(out);
		return one;
	}
	return json_pack("{s:o}", kind, out);
}

typedef struct Tx
{
	bool		users;
	json_t	   *mapping;
	char	   *err;
} Tx;

static void
txerr(Tx *t, const char *fmt, const char *a)
{
	if (t->err == NULL)
	{
		char		buf[300];

		snprintf(buf, sizeof(buf), fmt, a);
		t->err = strdup(buf);
	}
}

/* The column mapped to a canonical SCIM path, or NULL. */
static const char *
mapped_column(json_t *mapping, const char *canon)
{
	json_t	   *attrs = json_object_get(mapping, "attributes");
	const char *k;
	json_t	   *v;

	json_object_foreach(attrs, k, v)
		if (strcasecmp(k, canon) == 0 && json_is_string(v))
		return json_string_value(v);
	return NULL;
}

/*
 * The mapped paths of one multi-valued attribute: for each mapping key
 * "emails[type eq "work"].value", its type and sub-attribute.
 */
typedef struct MvEntry
{
	char		type[32];
	char		sub[32];
	const char *column;
} MvEntry;

static int
mv_entries(json_t *mapping, const char *attr, MvEntry *out, int max)
{
	json_t	   *attrs = json_object_get(mapping, "attributes");
	const char *k;
	json_t	   *v;
	int			n = 0;
	size_t		al = strlen(attr);

	json_object_foreach(attrs, k, v)
	{
		const char *q,
				   *e,
				   *dot;

		if (n >= max || !json_is_string(v) || strncasecmp(k, attr, al) != 0 || k[al] != '[')
			continue;
		q = strchr(k, '"');
		e = q ? strchr(q + 1, '"') : NULL;
		dot = e ? strstr(e, "].") : NULL;
		if (!q || !e || !dot || (size_t) (e - q - 1) >= sizeof(out[n].type) ||
			strlen(dot + 2) >= sizeof(out[n].sub))
			continue;
		memcpy(out[n].type, q + 1, e - q - 1);
		out[n].type[e - q - 1] = '\0';
		strcpy(out[n].sub, dot + 2);
		out[n].column = json_string_value(v);
		n++;
	}
	return n;
}

/*
 * Is type the first mapped type of the attribute?  scim.c renders that
 * element with "primary": true.
 */
static bool
mv_primary(MvEntry *es, int n, const char *type)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(es[i].sub, "value") == 0)
			return strcasecmp(es[i].type, type) == 0;
	return n > 0 && strcasecmp(es[0].type, type) == 0;
}

static json_t *tx_node(Tx *t, const FNode *n);

/*
 * A condition on one element of a mapped multi-valued attribute, the
 * element being the one of type `type`.
 */
static json_t *
tx_element(Tx *t, const FNode *n, const char *attr, MvEntry *es, int nes, const char *type)
{
	json_t	   *list;

	switch (n->kind)
	{
		case F_AND:
		case F_OR:
			list = json_array();
			for (int i = 0; i < n->nkids; i++)
				json_array_append_new(list, tx_element(t, n->kids[i], attr, es, nes, type));
			return ast_join(n->kind == F_AND ? "and" : "or", list);
		case F_NOT:
			return ast_not(tx_element(t, n->kids[0], attr, es, nes, type));
		case F_VALPATH:
			txerr(t, "invalid filter: value filters do not nest (%s)", n->attr);
			return json_false();
		case F_CMP:
			break;
	}
	if (n->sub || n->schema)
	{
		txerr(t, "invalid filter: unknown sub-attribute \"%s\"", n->attr);
		return json_false();
	}
	if (strcasecmp(n->attr, "type") == 0)
	{
		json_t	   *tv = json_string(type);
		json_t	   *r = json_boolean(compare(tv, n->op, n->value));

		json_decref(tv);
		return r;
	}
	if (strcasecmp(n->attr, "primary") == 0)
	{
		json_t	   *pv = json_boolean(mv_primary(es, nes, type));
		json_t	   *r = json_boolean(compare(pv, n->op, n->value));

		json_decref(pv);
		return r;
	}
	if (schema_canonical(attr, n->attr, true) == NULL)
	{
		txerr(t, "invalid filter: unknown sub-attribute \"%s\"", n->attr);
		return json_false();
	}
	for (int i = 0; i < nes; i++)
		if (strcasecmp(es[i].type, type) == 0 && strcasecmp(es[i].sub, n->attr) == 0)
		{
			char		col[300];

			snprintf(col, sizeof(col), "col:%s", es[i].column);
			return ast_cmp(col, n->op, n->value, true);
		}
	return json_false();
}

/* Does an element of that type exist: one of its columns is not null. */
static json_t *
tx_exists(MvEntry *es, int nes, const char *type)
{
	json_t	   *list = json_array();

	for (int i = 0; i < nes; i++)
		if (strcasecmp(es[i].type, type) == 0)
		{
			char		col[300];

			snprintf(col, sizeof(col), "col:%s", es[i].column);
			json_array_append_new(list, ast_cmp(col, "pr", NULL, false));
		}
	return ast_join("or", list);
}

/* attr[inner].sub op value over the mapped types of a multi-valued attribute. */
static json_t *
tx_multi(Tx *t, const char *attr, const FNode *inner, const char *sub, const char *op,
		 json_t *value)
{
	MvEntry		es[32];
	int			nes = mv_entries(t->mapping, attr, es, 32);
	json_t	   *list = json_array();
	const char *seen[32];
	int			nseen = 0;

	for (int i = 0; i < nes; i++)
	{
		json_t	   *conds = json_array();
		bool		dup = false;

		for (int j = 0; j < nseen; j++)
			if (strcasecmp(seen[j], es[i].type) == 0)
				dup = true;
		if (dup)
		{
			json_decref(conds);
			continue;
		}
		seen[nseen++] = es[i].type;
		json_array_append_new(conds, tx_exists(es, nes, es[i].type));
		if (inner)
			json_array_append_new(conds, tx_element(t, inner, attr, es, nes, es[i].type));
		if (op[0])
		{
			FNode		cmp = {F_CMP, NULL, 0, NULL, NULL, (char *) (sub ? sub : "value"), NULL, "", value};

			memcpy(cmp.op, op, 3);
			json_array_append_new(conds, tx_element(t, &cmp, attr, es, nes, es[i].type));
		}
		json_array_append_new(list, ast_join("and", conds));
	}
	return ast_join("or", list);
}

/* The grants attribute of a User ("groups", or "roles"/"entitlements"). */
static bool
is_grants_attr(Tx *t, const char *attr)
{
	json_t	   *ug = json_object_get(t->mapping, "user_grants");
	const char *name = json_is_string(ug) ? json_string_value(ug) : "groups";

	return strcasecmp(attr, name) == 0 && json_is_true(json_object_get(t->mapping, "has_grants"));
}

/*
 * Can value name an id of the given SQL type?  An id that cannot (Entra's
 * test filter: a random GUID against integer ids) matches nothing rather
 * than failing the query.
 */
static bool
id_may_parse(json_t *value, json_t *type)
{
	const char *t = json_string_value(type);
	const char *v;

	if (t == NULL || !json_is_string(value))
		return true;
	v = json_string_value(value);
	if (strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0 || strcmp(t, "smallint") == 0)
	{
		size_t		n = strlen(v);
		const char *p = v;

		while (*p == ' ')
			p++;
		if (*p == '-' || *p == '+')
			p++;
		if (*p == '\0' || n > 25)
			return false;
		for (; *p; p++)
			if (!isdigit((unsigned char) *p) && *p != ' ')
				return false;
		return true;
	}
	if (strcmp(t, "uuid") == 0)
	{
		int			hex = 0;

		for (const char *p = v; *p; p++)
		{
			if (isxdigit((unsigned char) *p))
				hex++;
			else if (*p != '-' && *p != '{' && *p != '}')
				return false;
		}
		return hex == 32;
	}
	return true;
}

/* An id or member comparison, folded when the value cannot be such an id. */
static json_t *
ast_id(const char *attr, const FNode *n, json_t *type)
{
	if ((strcmp(n->op, "eq") == 0 || strcmp(n->op, "ne") == 0) && !id_may_parse(n->value, type))
		return json_boolean(strcmp(n->op, "ne") == 0);
	return ast_cmp(attr, n->op, n->value, false);
}

/* One comparison (CMP or VALPATH) on a User or Group. */
static json_t *
tx_attr(Tx *t, const FNode *n)
{
	const char *attr = n->attr;
	const char *sub = n->sub;
	bool		ext = false;

	if (n->schema)
	{
		if (t->users && strcasecmp(n->schema, SCIM_ENTERPRISE) == 0)
			ext = true;
		else if (strcasecmp(n->schema, t->users ? SCIM_USER : SCIM_GROUP) != 0)
		{
			txerr(t, "invalid filter: unknown schema \"%s\"", n->schema);
			return json_false();
		}
	}
	if (ext)
	{
		const char *canon = schema_canonical(SCIM_ENTERPRISE, attr, true);
		char		key[300];
		const char *col;

		if (canon == NULL || n->kind == F_VALPATH)
		{
			txerr(t, "invalid filter: unknown attribute \"%s\"", attr);
			return json_false();
		}
		if (strcmp(canon, "manager") == 0)
		{
			if (sub && strcasecmp(sub, "value") != 0)
				return json_false();
			snprintf(key, sizeof(key), "%s:manager.value", SCIM_ENTERPRISE);
		}
		else if (sub)
		{
			txerr(t, "invalid filter: unknown sub-attribute \"%s\"", sub);
			return json_false();
		}
		else
			snprintf(key, sizeof(key), "%s:%s", SCIM_ENTERPRISE, canon);
		col = mapped_column(t->mapping, key);
		if (col == NULL)
			return json_false();
		snprintf(key, sizeof(key), "col:%s", col);
		return ast_cmp(key, n->op, n->value, true);
	}

	if (n->kind == F_CMP && sub == NULL)
	{
		/* simple attributes */
		if (strcasecmp(attr, "id") == 0)
			return ast_id("id", n, json_object_get(t->mapping, t->users ? "account_id_type" :
												   "entitlement_id_type"));
		if (t->users && strcasecmp(attr, "userName") == 0)
			return ast_cmp("name", n->op, n->value, true);
		if (!t->users && strcasecmp(attr, "displayName") == 0)
			return ast_cmp("name", n->op, n->value, true);
		if (t->users && strcasecmp(attr, "active") == 0)
			return json_is_true(json_object_get(t->mapping, "has_status")) ?
				ast_cmp("enabled", n->op, n->value, false) : json_false();
		if (t->users && strcasecmp(attr, "userType") == 0)
			return json_is_true(json_object_get(t->mapping, "has_kind")) ?
				ast_cmp("kind", n->op, n->value, true) : json_false();
	}
	if (strcasecmp(attr, "meta") == 0 && n->kind == F_CMP && sub)
	{
		const char *which = strcasecmp(sub, "created") == 0 ? "created" :
			strcasecmp(sub, "lastModified") == 0 ? "lastModified" : NULL;

		if (strcasecmp(sub, "resourceType") == 0)
		{
			json_t	   *rt = json_string(t->users ? "User" : "Group");
			json_t	   *r = json_boolean(compare(rt, n->op, n->value));

			json_decref(rt);
			return r;
		}
		if (which == NULL)
			return json_false();
		if (!t->users || !json_is_string(json_object_get(t->mapping, which)))
			return json_false();
		return ast_cmp(which, n->op, n->value, false);
	}
	/* members of a group / grants of a user */
	if ((!t->users && strcasecmp(attr, "members") == 0) || (t->users && is_grants_attr(t, attr)))
	{
		json_t	   *list;

		if (n->kind == F_CMP)
		{
			if (sub == NULL || strcasecmp(sub, "value") == 0)
				return ast_id("member", n, json_object_get(t->mapping, t->users ? "entitlement_id_type" :
														   "account_id_type"));
			if (schema_canonical(t->users ? "groups" : "members", sub, t->users) == NULL)
				txerr(t, "invalid filter: unknown sub-attribute \"%s\"", sub);
			return json_false();
		}
		/* members[value eq "x"], members[value eq "x" or value eq "y"] */
		list = json_array();
		if (n->inner->kind == F_CMP && strcasecmp(n->inner->attr, "value") == 0 && !n->inner->sub)
			json_array_append_new(list, ast_id("member", n->inner,
											   json_object_get(t->mapping, t->users ? "entitlement_id_type" :
															   "account_id_type")));
		else if (n->inner->kind == F_OR)
		{
			json_t	   *ors = json_array();

			for (int i = 0; i < n->inner->nkids; i++)
			{
				FNode	   *k = n->inner->kids[i];

				if (k->kind == F_CMP && strcasecmp(k->attr, "value") == 0 && !k->sub)
					json_array_append_new(ors, ast_id("member", k,
													  json_object_get(t->mapping, t->users ? "entitlement_id_type" :
																	  "account_id_type")));
				else
					txerr(t, "invalid filter: only value can be compared in %s[…]", attr);
			}
			json_array_append_new(list, ast_join("or", ors));
		}
		else
			txerr(t, "invalid filter: only value can be compared in %s[…]", attr);
		if (n->op[0] && (n->sub == NULL || strcasecmp(n->sub, "value") == 0))
			json_array_append_new(list, ast_cmp("member", n->op, n->value, false));
		return ast_join("and", list);
	}
	if (t->users)
	{
		const char *canon = schema_canonical("", attr, true);
		char		key[300];
		const char *col;

		if (canon == NULL)
		{
			txerr(t, "invalid filter: unknown attribute \"%s\"", attr);
			return json_false();
		}
		if (strcmp(canon, "emails") == 0 || strcmp(canon, "phoneNumbers") == 0 ||
			strcmp(canon, "addresses") == 0 || strcmp(canon, "ims") == 0 ||
			strcmp(canon, "photos") == 0 || strcmp(canon, "x509Certificates") == 0 ||
			strcmp(canon, "roles") == 0 || strcmp(canon, "entitlements") == 0 ||
			strcmp(canon, "groups") == 0)
		{
			if (n->kind == F_VALPATH)
				return tx_multi(t, canon, n->inner, n->sub, n->op, n->value);
			if (sub && strcasecmp(sub, "type") == 0)
			{
				/* emails.type eq "work": as emails[type eq "work"] */
				FNode		inner = {F_CMP, NULL, 0, NULL, NULL, "type", NULL, "", n->value};

				memcpy(inner.op, n->op, 3);
				return tx_multi(t, canon, &inner, NULL, "", NULL);
			}
			if (strcmp(n->op, "pr") == 0 && sub == NULL)
				return tx_multi(t, canon, NULL, NULL, "", NULL);
			return tx_multi(t, canon, NULL, sub ? sub : "value", n->op, n->value);
		}
		if (n->kind == F_VALPATH)
		{
			txerr(t, "invalid filter: \"%s\" is not multi-valued", attr);
			return json_false();
		}
		if (strcmp(canon, "name") == 0)
		{
			const char *s = sub ? schema_canonical("name", sub, true) : NULL;

			if (s == NULL)
			{
				txerr(t, "invalid filter: name needs a sub-attribute such as name.givenName%s", "");
				return json_false();
			}
			snprintf(key, sizeof(key), "name.%s", s);
		}
		else if (sub)
		{
			txerr(t, "invalid filter: \"%s\" has no sub-attributes", attr);
			return json_false();
		}
		else
			snprintf(key, sizeof(key), "%s", canon);
		col = mapped_column(t->mapping, key);
		if (col == NULL)
			return json_false();
		snprintf(key, sizeof(key), "col:%s", col);
		return ast_cmp(key, n->op, n->value, strcmp(canon, "externalId") != 0);
	}
	if (schema_canonical("", attr, false) == NULL)
		txerr(t, "invalid filter: unknown attribute \"%s\"", attr);
	return json_false();
}

static json_t *
tx_node(Tx *t, const FNode *n)
{
	json_t	   *list;

	switch (n->kind)
	{
		case F_AND:
		case F_OR:
			list = json_array();
			for (int i = 0; i < n->nkids; i++)
				json_array_append_new(list, tx_node(t, n->kids[i]));
			return ast_join(n->kind == F_AND ? "and" : "or", list);
		case F_NOT:
			return ast_not(tx_node(t, n->kids[0]));
		case F_CMP:
		case F_VALPATH:
			return tx_attr(t, n);
	}
	return json_false();
}

/*
 * Translate a parsed filter into the extension's AST for Users (users) or
 * Groups.  NULL with *errmsg for a filter that names unknown attributes.
 */
json_t *
filter_to_ast(const FNode *n, bool users, json_t *mapping, char **errmsg)
{
	Tx			t = {users, mapping, NULL};
	json_t	   *ast = tx_node(&t, n);

	if (t.err)
	{
		json_decref(ast);
		*errmsg = t.err;
		return NULL;
	}
	*errmsg = NULL;
	/* constants that survived folding: id pr is always true */
	if (json_is_boolean(ast))
	{
		json_t	   *always = json_pack("{s:s,s:s}", "attr", "id", "op", "pr");

		if (json_is_false(ast))
			always = json_pack("{s:o}", "not", always);
		json_decref(ast);
		return always;
	}
	return ast;
}
