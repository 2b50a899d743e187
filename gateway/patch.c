/*-------------------------------------------------------------------------
 *
 * patch.c
 *	  PATCH (RFC 7644 section 3.5.2) and PUT on an in-memory SCIM resource.
 *	  The result is the desired resource; scim.c turns the difference from
 *	  the stored one into calls of the SQL API.  Accepts the dialects of
 *	  real clients: Entra's capitalised ops, "True"/"False" strings, member
 *	  removal by a value array, path-less replace with dotted keys, and
 *	  Okta's path-less replace of active, displayName or members.
 *
 * IDENTIFICATION
 *	  gateway/patch.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct PatchErr
{
	int			status;
	const char *scim_type;
	char	   *detail;
} PatchErr;

static int
fail(PatchErr *e, const char *scim_type, const char *fmt, const char *arg)
{
	char		buf[400];

	if (e->status == 0)
	{
		snprintf(buf, sizeof(buf), fmt, arg ? arg : "");
		e->status = 400;
		e->scim_type = scim_type;
		e->detail = strdup(buf);
	}
	return 400;
}

/* Is a canonical top-level attribute multi-valued? */
static bool
is_multi(const char *canon)
{
	static const char *const multi[] = {"emails", "phoneNumbers", "ims", "photos", "addresses",
		"groups", "entitlements", "roles", "x509Certificates", "members", NULL};

	for (int i = 0; multi[i]; i++)
		if (strcmp(canon, multi[i]) == 0)
			return true;
	return false;
}

/* Is a canonical attribute complex and single-valued? */
static bool
is_complex(const char *canon)
{
	return strcmp(canon, "name") == 0 || strcmp(canon, "manager") == 0 ||
		strcmp(canon, "meta") == 0 || strcmp(canon, SCIM_ENTERPRISE) == 0;
}

/*
 * A copy of a value with the known attribute names spelled canonically
 * (clients may write "GivenName"); unknown names are kept as written.
 */
static json_t *
canon_value(const char *canon, json_t *v, bool users)
{
	json_t	   *out;
	const char *k;
	json_t	   *x;
	size_t		i;

	if (json_is_array(v))
	{
		out = json_array();
		json_array_foreach(v, i, x)
			json_array_append_new(out, canon_value(canon, x, users));
		return out;
	}
	if (!json_is_object(v))
		return json_deep_copy(v);
	out = json_object();
	json_object_foreach(v, k, x)
	{
		const char *ck = schema_canonical(canon, k, users);

		json_object_set_new(out, ck ? ck : k, canon_value(ck ? ck : k, x, users));
	}
	return out;
}

/* A whole resource from a client body, with canonical names. */
static json_t *
canon_resource(json_t *body, bool users)
{
	json_t	   *out = json_object();
	const char *k;
	json_t	   *v;

	json_object_foreach(body, k, v)
	{
		const char *ck = schema_canonical("", k, users);

		if (ck)
			json_object_set_new(out, ck, canon_value(ck, v, users));
		else
			json_object_set_new(out, k, json_deep_copy(v));
	}
	return out;
}

/* Two elements of a multi-valued attribute with the same "value". */
static bool
same_value(json_t *a, json_t *b)
{
	json_t	   *va = json_is_object(a) ? json_object_get(a, "value") : a;
	json_t	   *vb = json_is_object(b) ? json_object_get(b, "value") : b;

	if (va == NULL || vb == NULL)
		return false;
	if (json_is_string(va) && json_is_string(vb))
		return strcmp(json_string_value(va), json_string_value(vb)) == 0;
	if (json_is_integer(va) && json_is_string(vb))
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(va));
		return strcmp(buf, json_string_value(vb)) == 0;
	}
	if (json_is_integer(vb) && json_is_string(va))
		return same_value(vb, va);
	return json_equal(va, vb);
}

/* Merge the members of src into the object dst (replace of a complex attribute). */
static void
merge_into(json_t *dst, json_t *src)
{
	const char *k;
	json_t	   *v;

	json_object_foreach(src, k, v)
	{
		if (json_is_null(v))
			json_object_del(dst, k);
		else
			json_object_set(dst, k, v);
	}
}

static int	apply_path(json_t *res, const char *op, const char *pathtext, json_t *value,
					   bool users, PatchErr *e);

/* Path-less add/replace: each member of the value object is a path of its own. */
static int
apply_pathless(json_t *res, const char *op, json_t *value, bool users, PatchErr *e)
{
	const char *k;
	json_t	   *v;

	if (!json_is_object(value))
		return fail(e, "invalidValue", "an operation without a path needs an object value%s", NULL);
	json_object_foreach(value, k, v)
	{
		if (strcasecmp(k, "schemas") == 0)
			continue;
		if (strcasecmp(k, SCIM_USER) == 0 || strcasecmp(k, SCIM_GROUP) == 0)
		{
			/* the core schema as a key: its members are top-level paths */
			if (apply_pathless(res, op, v, users, e) != 0)
				return 400;
			continue;
		}
		if (apply_path(res, op, k, v, users, e) != 0)
			return 400;
	}
	return 0;
}

/* The multi-valued attribute arr gets value appended (de-duplicated by value). */
static void
mv_add(json_t *arr, json_t *value)
{
	size_t		i,
				j;
	json_t	   *x,
			   *y;
	json_t	   *vals = json_is_array(value) ? value : NULL;

	if (vals == NULL)
	{
		vals = json_array();
		json_array_append(vals, value);
	}
	else
		json_incref(vals);
	json_array_foreach(vals, i, x)
	{
		bool		dup = false;

		if (json_is_null(x))
			continue;
		json_array_foreach(arr, j, y)
		{
			json_t	   *tx = json_is_object(x) ? json_object_get(x, "type") : NULL;
			json_t	   *ty = json_is_object(y) ? json_object_get(y, "type") : NULL;

			if (same_value(x, y) || json_equal(x, y))
				dup = true;
			else if (json_is_string(tx) && json_is_string(ty) &&
					 strcasecmp(json_string_value(tx), json_string_value(ty)) == 0)
			{
				/* one value per type: a new work email replaces the old one */
				merge_into(y, x);
				dup = true;
			}
		}
		if (!dup)
			json_array_append(arr, x);
	}
	json_decref(vals);
}

/* Remove from arr the elements listed in value (Entra's member removal). */
static void
mv_remove_listed(json_t *arr, json_t *value)
{
	json_t	   *vals = json_is_array(value) ? value : NULL;
	size_t		i;

	if (vals == NULL)
	{
		vals = json_array();
		json_array_append(vals, value);
	}
	else
		json_incref(vals);
	for (i = json_array_size(arr); i > 0; i--)
	{
		json_t	   *y = json_array_get(arr, i - 1);
		size_t		j;
		json_t	   *x;

		json_array_foreach(vals, j, x)
			if (same_value(x, y))
		{
			json_array_remove(arr, i - 1);
			break;
		}
	}
	json_decref(vals);
}

/*
 * Is the filter exactly `type eq "x"`?  Then a replace that matches nothing
 * creates the element (Entra replaces emails[type eq "work"].value on a
 * user that has no work email yet).
 */
static const char *
type_eq(const FNode *f)
{
	if (f && f->kind == F_CMP && strcasecmp(f->attr, "type") == 0 && f->sub == NULL &&
		strcmp(f->op, "eq") == 0 && json_is_string(f->value))
		return json_string_value(f->value);
	return NULL;
}

/* One operation with a path on the resource. */
static int
apply_path(json_t *res, const char *op, const char *pathtext, json_t *value, bool users,
		   PatchErr *e)
{
	char	   *perrmsg;
	ScimPath   *sp = path_parse(pathtext, &perrmsg);
	json_t	   *container = res;
	const char *parent = "";
	const char *canon;
	json_t	   *cur;
	bool		remove = strcmp(op, "remove") == 0;
	bool		add = strcmp(op, "add") == 0;
	int			rc = 0;

	if (sp == NULL)
	{
		fail(e, "invalidPath", "invalid path: %s", perrmsg);
		free(perrmsg);
		return 400;
	}
	if (sp->schema)
	{
		if (users && strcasecmp(sp->schema, SCIM_ENTERPRISE) == 0)
		{
			container = json_object_get(res, SCIM_ENTERPRISE);
			if (container == NULL && !remove)
			{
				container = json_object();
				json_object_set_new(res, SCIM_ENTERPRISE, container);
			}
			parent = SCIM_ENTERPRISE;
			if (sp->attr == NULL)
			{
				/* the extension as a whole */
				if (remove)
					json_object_del(res, SCIM_ENTERPRISE);
				else if (!json_is_object(value))
					rc = fail(e, "invalidValue", "the enterprise extension needs an object value%s", NULL);
				else
				{
					json_t	   *cv = canon_value(SCIM_ENTERPRISE, value, users);

					merge_into(container, cv);
					json_decref(cv);
				}
				goto done;
			}
			if (container == NULL)
				goto done;		/* removing from an absent extension */
		}
		else if (strcasecmp(sp->schema, users ? SCIM_USER : SCIM_GROUP) == 0)
		{
			if (sp->attr == NULL)
			{
				rc = remove ? fail(e, "invalidPath", "cannot remove the core schema%s", NULL) :
					apply_pathless(res, op, value, users, e);
				goto done;
			}
		}
		else
		{
			rc = fail(e, "invalidPath", "unknown schema \"%s\"", sp->schema);
			goto done;
		}
	}
	canon = schema_canonical(parent, sp->attr, users);
	if (canon == NULL)
	{
		rc = fail(e, "invalidPath", "unknown attribute \"%s\"", sp->attr);
		goto done;
	}
	/*
	 * id and meta are read-only; the id unchanged is no change (Okta's
	 * path-less replace of a group repeats the group's id).
	 */
	if (strcmp(canon, "id") == 0 && !remove && json_is_string(value) && sp->sub == NULL &&
		sp->filter == NULL && container == res &&
		json_equal(value, json_object_get(res, "id")))
		goto done;
	if (strcmp(canon, "id") == 0 || strcmp(canon, "meta") == 0 ||
		(users && strcmp(canon, "groups") == 0 && container == res))
	{
		rc = fail(e, "mutability", "attribute \"%s\" is read-only", canon);
		goto done;
	}
	if (strcmp(canon, "schemas") == 0)
		goto done;
	cur = json_object_get(container, canon);

	if (is_multi(canon))
	{
		json_t	   *sub_canon_v = NULL;
		const char *sub = NULL;

		if (sp->sub)
		{
			sub = schema_canonical(canon, sp->sub, users);
			if (sub == NULL)
			{
				rc = fail(e, "invalidPath", "unknown sub-attribute \"%s\"", sp->sub);
				goto done;
			}
		}
		if (!json_is_array(cur))
		{
			if (remove)
				goto done;
			cur = json_array();
			json_object_set_new(container, canon, cur);
		}
		if (sp->filter)
		{
			size_t		i;
			json_t	   *el;
			bool		matched = false;

			for (i = json_array_size(cur); i > 0; i--)
			{
				el = json_array_get(cur, i - 1);
				if (!filter_match(sp->filter, el))
					continue;
				matched = true;
				if (remove && sub == NULL)
					json_array_remove(cur, i - 1);
				else if (remove)
					json_object_del(el, sub);
				else if (sub)
				{
					if (!json_is_object(el))
						continue;
					sub_canon_v = canon_value(sub, value, users);
					json_object_set_new(el, sub, sub_canon_v);
				}
				else if (json_is_object(value) && json_is_object(el))
				{
					json_t	   *cv = canon_value(canon, value, users);

					merge_into(el, cv);
					json_decref(cv);
				}
				else
					json_array_set_new(cur, i - 1, canon_value(canon, value, users));
			}
			if (!matched && !remove)
			{
				const char *t = type_eq(sp->filter);

				if (t == NULL)
				{
					rc = fail(e, "noTarget", "no value matches the filter of \"%s\"", pathtext);
					goto done;
				}
				el = json_pack("{s:s}", "type", t);
				if (sub)
					json_object_set_new(el, sub, canon_value(sub, value, users));
				else if (json_is_object(value))
				{
					json_t	   *cv = canon_value(canon, value, users);

					merge_into(el, cv);
					json_decref(cv);
				}
				json_array_append_new(cur, el);
			}
			goto done;
		}
		if (sub)
		{
			/* emails.value without a filter: every element */
			size_t		i;
			json_t	   *el;

			json_array_foreach(cur, i, el)
				if (json_is_object(el))
			{
				if (remove)
					json_object_del(el, sub);
				else
					json_object_set_new(el, sub, canon_value(sub, value, users));
			}
			if (json_array_size(cur) == 0 && !remove)
				json_array_append_new(cur, json_pack("{s:O}", sub, value));
			goto done;
		}
		if (remove)
		{
			if (value && !json_is_null(value))
				mv_remove_listed(cur, value);
			else
				json_array_clear(cur);
		}
		else
		{
			json_t	   *cv = canon_value(canon, value, users);

			if (!add)
				json_array_clear(cur);
			mv_add(cur, cv);
			json_decref(cv);
		}
		goto done;
	}

	if (sp->filter)
	{
		rc = fail(e, "invalidPath", "\"%s\" is not multi-valued", canon);
		goto done;
	}
	if (is_complex(canon) || strcmp(canon, "manager") == 0)
	{
		if (sp->sub)
		{
			const char *sub = schema_canonical(canon, sp->sub, users);

			if (sub == NULL)
			{
				rc = fail(e, "invalidPath", "unknown sub-attribute \"%s\"", sp->sub);
				goto done;
			}
			if (remove)
			{
				if (json_is_object(cur))
					json_object_del(cur, sub);
				goto done;
			}
			if (!json_is_object(cur))
			{
				cur = json_object();
				json_object_set_new(container, canon, cur);
			}
			if (json_is_null(value))
				json_object_del(cur, sub);
			else
				json_object_set_new(cur, sub, canon_value(sub, value, users));
			goto done;
		}
		if (remove || json_is_null(value))
		{
			json_object_del(container, canon);
			goto done;
		}
		if (strcmp(canon, "manager") == 0 && !json_is_object(value))
		{
			/* Entra sends the manager's id alone */
			json_object_set_new(container, canon, json_pack("{s:O}", "value", value));
			goto done;
		}
		if (!json_is_object(value))
		{
			rc = fail(e, "invalidValue", "\"%s\" needs an object value", canon);
			goto done;
		}
		if (!json_is_object(cur))
		{
			cur = json_object();
			json_object_set_new(container, canon, cur);
		}
		{
			json_t	   *cv = canon_value(canon, value, users);

			merge_into(cur, cv);
			json_decref(cv);
		}
		goto done;
	}
	if (sp->sub)
	{
		rc = fail(e, "invalidPath", "\"%s\" has no sub-attributes", canon);
		goto done;
	}
	/* a simple attribute */
	if (remove || value == NULL || json_is_null(value))
		json_object_del(container, canon);
	else if (json_is_array(value) && json_array_size(value) == 1 &&
			 json_is_object(json_array_get(value, 0)) &&
			 json_object_get(json_array_get(value, 0), "value"))
		/* [{"value": x}] for a simple attribute, as some clients send */
		json_object_set(container, canon, json_object_get(json_array_get(value, 0), "value"));
	else if (json_is_object(value) || json_is_array(value))
		rc = fail(e, "invalidValue", "\"%s\" needs a single value", canon);
	else
		json_object_set(container, canon, value);
done:
	path_free(sp);
	return rc;
}

/*
 * Apply a PatchOp body to res (the stored resource rendered).  Returns 0,
 * or 400 with the scimType and a malloc'd detail.
 */
int
patch_apply(json_t *res, json_t *body, bool users, const char **scim_type, char **detail)
{
	json_t	   *ops = attr_get(body, "Operations");
	PatchErr	e = {0, NULL, NULL};
	size_t		i;
	json_t	   *o;

	if (!json_is_object(body) || !json_is_array(ops) || json_array_size(ops) == 0)
		fail(&e, "invalidSyntax", "a PatchOp body needs a non-empty \"Operations\" array%s", NULL);
	else
		json_array_foreach(ops, i, o)
	{
		json_t	   *opv = attr_get(o, "op");
		json_t	   *path = attr_get(o, "path");
		json_t	   *value = attr_get(o, "value");
		char		op[8];

		if (!json_is_object(o) || !json_is_string(opv) || json_string_length(opv) >= sizeof(op))
		{
			fail(&e, "invalidSyntax", "each operation needs an \"op\" of add, replace or remove%s", NULL);
			break;
		}
		snprintf(op, sizeof(op), "%s", json_string_value(opv));
		for (char *c = op; *c; c++)
			*c = (*c >= 'A' && *c <= 'Z') ? *c + 32 : *c;
		if (strcmp(op, "add") != 0 && strcmp(op, "replace") != 0 && strcmp(op, "remove") != 0)
		{
			fail(&e, "invalidSyntax", "unknown op \"%s\" (add, replace or remove)", json_string_value(opv));
			break;
		}
		if (path != NULL && !json_is_null(path) && !json_is_string(path))
		{
			fail(&e, "invalidPath", "\"path\" must be a string%s", NULL);
			break;
		}
		if (path == NULL || json_is_null(path) || json_string_length(path) == 0)
		{
			if (strcmp(op, "remove") == 0)
			{
				fail(&e, "noTarget", "remove needs a path%s", NULL);
				break;
			}
			if (apply_pathless(res, op, value, users, &e) != 0)
				break;
			continue;
		}
		if (strcmp(op, "remove") != 0 && value == NULL)
		{
			fail(&e, "invalidValue", "%s needs a value", op);
			break;
		}
		if (apply_path(res, op, json_string_value(path), value, users, &e) != 0)
			break;
	}
	*scim_type = e.scim_type;
	*detail = e.detail;
	return e.status;
}

/*
 * PUT: the body replaces the resource.  id and meta stay; attributes the
 * gateway cannot clear safely by omission (active, the grants, members) keep
 * their stored value when absent.  *res is replaced.
 */
int
patch_put(json_t *res, json_t *body, bool users, const char **scim_type, char **detail)
{
	json_t	   *nr;
	const char *keep_users[] = {"id", "meta", "active", "userType", "groups", "roles", "entitlements", NULL};
	const char *keep_groups[] = {"id", "meta", "members", NULL};
	const char **keep = users ? keep_users : keep_groups;

	*scim_type = NULL;
	*detail = NULL;
	if (!json_is_object(body))
	{
		*scim_type = "invalidSyntax";
		*detail = strdup("the body must be a JSON object");
		return 400;
	}
	nr = canon_resource(body, users);
	/* RFC 7644 section 3.5.1: id may be repeated, not changed */
	{
		json_t	   *nid = json_object_get(nr, "id");
		json_t	   *oid = json_object_get(res, "id");

		if (nid != NULL && !json_is_null(nid) && !same_value(nid, oid))
		{
			json_decref(nr);
			*scim_type = "mutability";
			*detail = strdup("id is read-only: the id in the body differs from the one in the URL");
			return 400;
		}
	}
	for (int i = 0; keep[i]; i++)
	{
		json_t	   *old = json_object_get(res, keep[i]);

		if (strcmp(keep[i], "id") == 0 || strcmp(keep[i], "meta") == 0)
			json_object_del(nr, keep[i]);
		if (old && json_object_get(nr, keep[i]) == NULL)
			json_object_set(nr, keep[i], old);
	}
	json_object_clear(res);
	json_object_update(res, nr);
	json_decref(nr);
	return 0;
}

/* A POST body as a resource with canonical names. */
json_t *
patch_canon_resource(json_t *body, bool users)
{
	return canon_resource(body, users);
}

/* ---- RFC 7643 types ---- */

/* A boolean as real clients send it: true/false, or Entra's "True"/"False". */
static bool
bool_like(json_t *v)
{
	return json_is_boolean(v) ||
		(json_is_string(v) && (strcasecmp(json_string_value(v), "true") == 0 ||
							   strcasecmp(json_string_value(v), "false") == 0));
}

/* Is the name in the NULL-terminated list? */
static bool
listed(const char *const *list, const char *name)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/*
 * Check one element of a multi-valued attribute: an object whose known
 * sub-attributes are strings, and "primary" a boolean.
 */
static int
check_element(const char *canon, json_t *el, PatchErr *e)
{
	const char *k;
	json_t	   *v;

	if (!json_is_object(el))
		return fail(e, "invalidValue", "each element of \"%s\" must be an object", canon);
	json_object_foreach(el, k, v)
	{
		char		what[300];

		if (json_is_null(v))
			continue;
		snprintf(what, sizeof(what), "%s.%s", canon, k);
		if (strcmp(k, "primary") == 0)
		{
			if (!bool_like(v))
				return fail(e, "invalidValue", "\"%s\" must be a boolean", what);
		}
		else if (schema_canonical(canon, k, true) != NULL || schema_canonical(canon, k, false) != NULL)
		{
			if (!json_is_string(v))
				return fail(e, "invalidValue", "\"%s\" must be a string", what);
		}
	}
	return 0;
}

/*
 * Check the value of one canonical top-level attribute against its RFC 7643
 * type: strings, the boolean active, the complex name, manager and
 * enterprise extension, the multi-valued attributes as arrays of objects.
 * null means unassigned and is always accepted; unknown attributes are the
 * mapping's business (ignored when unmapped).  old: the stored value; its
 * members and elements kept as they were are not checked.
 */
static int
check_attr(const char *canon, json_t *v, json_t *old, bool users, PatchErr *e)
{
	static const char *const user_strings[] = {"externalId", "userName", "displayName", "nickName",
		"profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone", "password", "id", NULL};
	static const char *const group_strings[] = {"externalId", "displayName", "id", NULL};
	const char *k;
	json_t	   *x;
	size_t		i;

	if (v == NULL || json_is_null(v))
		return 0;
	if (listed(users ? user_strings : group_strings, canon))
	{
		if (!json_is_string(v))
			return fail(e, "invalidValue", "\"%s\" must be a string", canon);
		return 0;
	}
	if (users && strcmp(canon, "active") == 0)
	{
		if (!bool_like(v))
			return fail(e, "invalidValue", "\"active\" must be true or false%s", NULL);
		return 0;
	}
	if (strcmp(canon, "schemas") == 0)
	{
		if (!json_is_array(v))
			return fail(e, "invalidValue", "\"schemas\" must be an array of strings%s", NULL);
		json_array_foreach(v, i, x)
			if (!json_is_string(x))
			return fail(e, "invalidValue", "\"schemas\" must be an array of strings%s", NULL);
		return 0;
	}
	if (users && (strcmp(canon, "name") == 0 || strcmp(canon, SCIM_ENTERPRISE) == 0))
	{
		if (!json_is_object(v))
			return fail(e, "invalidValue", "\"%s\" must be an object", canon);
		json_object_foreach(v, k, x)
		{
			const char *sub = schema_canonical(canon, k, true);
			char		what[300];

			if (sub == NULL || json_is_null(x) || json_equal(x, attr_get(old, k)))
				continue;
			snprintf(what, sizeof(what), "%s.%s", strcmp(canon, "name") == 0 ? "name" : "enterprise", sub);
			if (strcmp(sub, "manager") == 0)
			{
				/* an object with a string value, or (Entra) the id alone */
				json_t	   *mv = json_is_object(x) ? json_object_get(x, "value") : x;

				if (mv != NULL && !json_is_null(mv) && !json_is_string(mv))
					return fail(e, "invalidValue", "\"%s\" must be a string or an object with a string value", what);
			}
			else if (!json_is_string(x))
				return fail(e, "invalidValue", "\"%s\" must be a string", what);
		}
		return 0;
	}
	if (is_multi(canon))
	{
		if (!json_is_array(v))
			return fail(e, "invalidValue", "\"%s\" must be an array", canon);
		json_array_foreach(v, i, x)
		{
			bool		stored = false;
			size_t		j;
			json_t	   *y;

			/* elements already stored did not come from the client */
			json_array_foreach(old, j, y)
				if (json_equal(x, y))
				stored = true;
			if (!stored && check_element(canon, x, e) != 0)
				return 400;
		}
		return 0;
	}
	return 0;
}

/*
 * Check a whole resource (a POST body, or the result of a PUT or PATCH)
 * against the RFC 7643 types: 400 invalidValue with a detail naming the
 * attribute, or 0.  old: the stored resource; an attribute equal to its
 * stored value is not checked (it did not come from the client).
 */
int
patch_check(json_t *res, json_t *old, bool users, const char **scim_type, char **detail)
{
	PatchErr	e = {0, NULL, NULL};
	const char *k;
	json_t	   *v;

	json_object_foreach(res, k, v)
	{
		const char *canon = schema_canonical("", k, users);

		if (canon == NULL || strcmp(canon, "meta") == 0)
			continue;
		if (old && json_equal(v, json_object_get(old, k)))
			continue;
		if (check_attr(canon, v, old ? json_object_get(old, k) : NULL, users, &e) != 0)
			break;
	}
	*scim_type = e.scim_type;
	*detail = e.detail;
	return e.status;
}
