/*-------------------------------------------------------------------------
 *
 * test_filter.c
 *	  Unit tests of the filter parser, its translation into the extension's
 *	  AST and of PATCH on an in-memory resource (no database): make -C
 *	  gateway check.
 *
 * IDENTIFICATION
 *	  gateway/test_filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	failures = 0;
static int	tests = 0;

void		gw_log(const char *fmt,...);

/* The unit tests link without main.c. */
void
gw_log(const char *fmt,...)
{
}

static const char *mapping_text =
"{\"attributes\": {\"externalId\": \"ext\", \"name.givenName\": \"first\","
" \"emails[type eq \\\"work\\\"].value\": \"email\","
" \"emails[type eq \\\"home\\\"].value\": \"email2\","
" \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\": \"dept\","
" \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value\": \"boss\"},"
" \"user_grants\": \"groups\", \"created\": null, \"lastModified\": \"mtime\","
" \"has_status\": true, \"has_kind\": true, \"has_grants\": true}";

/* filter text → AST (compact, sorted) or "ERROR" */
static void
check_ast(const char *filter, bool users, const char *want)
{
	json_t	   *m = json_loads(mapping_text, 0, NULL);
	char	   *err = NULL;
	FNode	   *f = filter_parse(filter, &err);
	char	   *got;

	tests++;
	if (f == NULL)
		got = strdup("ERROR");
	else
	{
		json_t	   *ast = filter_to_ast(f, users, m, &err);

		got = ast ? json_dumps(ast, JSON_COMPACT | JSON_SORT_KEYS) : strdup("ERROR");
		json_decref(ast);
	}
	if (strcmp(got, want) != 0)
	{
		failures++;
		printf("FAIL %s\n  got  %s\n  want %s%s%s\n", filter, got, want, err ? "\n  err " : "", err ? err : "");
	}
	free(err);
	free(got);
	filter_free(f);
	json_decref(m);
}

static void
check_patch(const char *res_text, const char *body_text, bool users, const char *want)
{
	json_t	   *res = json_loads(res_text, 0, NULL);
	json_t	   *body = json_loads(body_text, 0, NULL);
	const char *st;
	char	   *detail;
	char	   *got;
	int			rc;

	tests++;
	if (res == NULL || body == NULL)
	{
		printf("FAIL bad test json %s\n", res ? body_text : res_text);
		failures++;
		return;
	}
	{
		json_t	   *old = json_deep_copy(res);

		rc = patch_apply(res, body, users, &st, &detail);
		if (rc == 0)
			rc = patch_check(res, old, users, &st, &detail);
		json_decref(old);
	}
	if (rc)
	{
		char		buf[300];

		snprintf(buf, sizeof(buf), "%d %s", rc, st ? st : "-");
		got = strdup(buf);
	}
	else
		got = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	if (strcmp(got, want) != 0)
	{
		failures++;
		printf("FAIL patch %s\n  got  %s\n  want %s\n  %s\n", body_text, got, want, detail ? detail : "");
	}
	free(detail);
	free(got);
	json_decref(res);
	json_decref(body);
}

/* PUT (put true) or a POST body's type check: the result or "status scimType" */
static void
check_put(const char *res_text, const char *body_text, bool put, bool users, const char *want)
{
	json_t	   *res = json_loads(res_text, 0, NULL);
	json_t	   *body = json_loads(body_text, 0, NULL);
	json_t	   *old = json_deep_copy(res);
	const char *st = NULL;
	char	   *detail = NULL;
	char	   *got;
	int			rc;

	tests++;
	if (put)
		rc = patch_put(res, body, users, &st, &detail);
	else
	{
		json_decref(res);
		res = patch_canon_resource(body, users);
		json_decref(old);
		old = NULL;
		rc = 0;
	}
	if (rc == 0)
		rc = patch_check(res, old, users, &st, &detail);
	if (rc)
	{
		char		buf[300];

		snprintf(buf, sizeof(buf), "%d %s", rc, st ? st : "-");
		got = strdup(buf);
	}
	else
		got = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	if (strcmp(got, want) != 0)
	{
		failures++;
		printf("FAIL %s %s\n  got  %s\n  want %s\n  %s\n", put ? "put" : "post", body_text, got, want,
			   detail ? detail : "");
	}
	free(detail);
	free(got);
	json_decref(res);
	json_decref(old);
	json_decref(body);
}

int
main(void)
{
	char		deep[300];

	check_ast("userName eq \"Bob\"", true, "{\"attr\":\"name\",\"ci\":true,\"op\":\"eq\",\"value\":\"Bob\"}");
	check_ast("USERNAME Eq \"Bob\"", true, "{\"attr\":\"name\",\"ci\":true,\"op\":\"eq\",\"value\":\"Bob\"}");
	check_ast("id eq \"7\" and active eq true", true,
			  "{\"and\":[{\"attr\":\"id\",\"ci\":false,\"op\":\"eq\",\"value\":\"7\"},{\"attr\":\"enabled\",\"ci\":false,\"op\":\"eq\",\"value\":true}]}");
	check_ast("externalId pr", true, "{\"attr\":\"col:ext\",\"ci\":false,\"op\":\"pr\"}");
	check_ast("nickName eq \"x\"", true, "{\"not\":{\"attr\":\"id\",\"op\":\"pr\"}}");
	check_ast("not (nickName eq \"x\")", true, "{\"attr\":\"id\",\"op\":\"pr\"}");
	check_ast("foo eq 1", true, "ERROR");
	check_ast("userName eq", true, "ERROR");
	check_ast("userName gt true", true, "ERROR");
	check_ast("(userName eq \"a\"", true, "ERROR");
	check_ast("userName eq \"a\" junk", true, "ERROR");
	check_ast("emails[type eq \"work\"].value eq \"a@b\"", true,
			  "{\"and\":[{\"attr\":\"col:email\",\"ci\":false,\"op\":\"pr\"},{\"attr\":\"col:email\",\"ci\":true,\"op\":\"eq\",\"value\":\"a@b\"}]}");
	check_ast("emails[type eq \"work\" and value co \"@x\"]", true,
			  "{\"and\":[{\"attr\":\"col:email\",\"ci\":false,\"op\":\"pr\"},{\"attr\":\"col:email\",\"ci\":true,\"op\":\"co\",\"value\":\"@x\"}]}");
	check_ast("emails co \"@x\"", true,
			  "{\"or\":[{\"and\":[{\"attr\":\"col:email\",\"ci\":false,\"op\":\"pr\"},{\"attr\":\"col:email\",\"ci\":true,\"op\":\"co\",\"value\":\"@x\"}]},{\"and\":[{\"attr\":\"col:email2\",\"ci\":false,\"op\":\"pr\"},{\"attr\":\"col:email2\",\"ci\":true,\"op\":\"co\",\"value\":\"@x\"}]}]}");
	check_ast("name.GIVENNAME sw \"J\" or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"R&D\"", true,
			  "{\"or\":[{\"attr\":\"col:first\",\"ci\":true,\"op\":\"sw\",\"value\":\"J\"},{\"attr\":\"col:dept\",\"ci\":true,\"op\":\"eq\",\"value\":\"R&D\"}]}");
	check_ast("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"9\"", true,
			  "{\"attr\":\"col:boss\",\"ci\":true,\"op\":\"eq\",\"value\":\"9\"}");
	check_ast("meta.lastModified gt \"2024-01-01T00:00:00Z\"", true,
			  "{\"attr\":\"lastModified\",\"ci\":false,\"op\":\"gt\",\"value\":\"2024-01-01T00:00:00Z\"}");
	check_ast("meta.created gt \"2024-01-01T00:00:00Z\"", true, "{\"not\":{\"attr\":\"id\",\"op\":\"pr\"}}");
	check_ast("groups.value eq \"5\"", true, "{\"attr\":\"member\",\"ci\":false,\"op\":\"eq\",\"value\":\"5\"}");
	check_ast("displayName eq \"Admins\" and members[value eq \"3\"]", false,
			  "{\"and\":[{\"attr\":\"name\",\"ci\":true,\"op\":\"eq\",\"value\":\"Admins\"},{\"attr\":\"member\",\"ci\":false,\"op\":\"eq\",\"value\":\"3\"}]}");
	check_ast("a eq 1 and b eq 2 or c eq 3", true, "ERROR");
	check_ast("userType eq \"service\" and not (active eq false) or userName sw \"x\"", true,
			  "{\"or\":[{\"and\":[{\"attr\":\"kind\",\"ci\":true,\"op\":\"eq\",\"value\":\"service\"},{\"not\":{\"attr\":\"enabled\",\"ci\":false,\"op\":\"eq\",\"value\":false}}]},{\"attr\":\"name\",\"ci\":true,\"op\":\"sw\",\"value\":\"x\"}]}");
	check_ast("userName eq \"a\\\"b\\u00e9\"", true, "{\"attr\":\"name\",\"ci\":true,\"op\":\"eq\",\"value\":\"a\\\"bé\"}");
	check_ast("userName eq null", true, "{\"not\":{\"attr\":\"name\",\"op\":\"pr\"}}");
	check_ast("id eq 12", true, "{\"attr\":\"id\",\"ci\":false,\"op\":\"eq\",\"value\":12}");
	memset(deep, 0, sizeof(deep));
	for (int i = 0; i < 70; i++)
		strcat(deep, "(");
	strcat(deep, "id pr");
	for (int i = 0; i < 70; i++)
		strcat(deep, ")");
	check_ast(deep, true, "ERROR");
	check_ast("((((id pr))))", true, "{\"attr\":\"id\",\"ci\":false,\"op\":\"pr\"}");
	check_ast("", true, "ERROR");
	check_ast("emails[", true, "ERROR");
	check_ast("emails[type eq \"work\"", true, "ERROR");
	check_ast("not id pr", true, "ERROR");

	/* PATCH */
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"active\":true}",
				"{\"Operations\":[{\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}]}", true,
				"{\"active\":\"False\",\"id\":\"1\",\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"active\":true}",
				"{\"Operations\":[{\"op\":\"replace\",\"value\":{\"active\":false}}]}", true,
				"{\"active\":false,\"id\":\"1\",\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"value\":{\"name.givenName\":\"J\",\"emails[type eq \\\"work\\\"].value\":\"j@x\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\":\"D\"}}]}", true,
				"{\"emails\":[{\"type\":\"work\",\"value\":\"j@x\"}],\"id\":\"1\",\"name\":{\"givenName\":\"J\"},\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"department\":\"D\"},\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"displayName\":\"g\",\"members\":[{\"value\":\"1\"},{\"value\":\"2\"},{\"value\":\"3\"}]}",
				"{\"Operations\":[{\"op\":\"Remove\",\"path\":\"members\",\"value\":[{\"value\":\"2\",\"$ref\":null}]}]}", false,
				"{\"displayName\":\"g\",\"id\":\"1\",\"members\":[{\"value\":\"1\"},{\"value\":\"3\"}]}");
	check_patch("{\"id\":\"1\",\"displayName\":\"g\",\"members\":[{\"value\":\"1\"},{\"value\":\"2\"}]}",
				"{\"Operations\":[{\"op\":\"remove\",\"path\":\"members[value eq \\\"1\\\"]\"}]}", false,
				"{\"displayName\":\"g\",\"id\":\"1\",\"members\":[{\"value\":\"2\"}]}");
	check_patch("{\"id\":\"1\",\"displayName\":\"g\",\"members\":[{\"value\":\"1\"}]}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"1\"},{\"value\":\"4\"}]}]}", false,
				"{\"displayName\":\"g\",\"id\":\"1\",\"members\":[{\"value\":\"1\"},{\"value\":\"4\"}]}");
	check_patch("{\"id\":\"1\",\"displayName\":\"g\",\"members\":[{\"value\":\"1\"}]}",
				"{\"Operations\":[{\"op\":\"replace\",\"value\":{\"displayName\":\"h\",\"members\":[{\"value\":\"7\"}]}}]}", false,
				"{\"displayName\":\"h\",\"id\":\"1\",\"members\":[{\"value\":\"7\"}]}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"value\":\"a@x\"}]}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"work\\\"].value\",\"value\":\"b@x\"}]}", true,
				"{\"emails\":[{\"type\":\"work\",\"value\":\"b@x\"}],\"id\":\"1\",\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager\",\"value\":\"9\"}]}", true,
				"{\"id\":\"1\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"manager\":{\"value\":\"9\"}},\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"bogus\",\"value\":\"9\"}]}", true, "400 invalidPath");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"id\",\"value\":\"9\"}]}", true, "400 mutability");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"frob\",\"path\":\"userName\",\"value\":\"9\"}]}", true, "400 invalidSyntax");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"remove\"}]}", true, "400 noTarget");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}", "{\"Operations\":[]}", true, "400 invalidSyntax");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"name\":{\"givenName\":\"x\",\"familyName\":\"y\"}}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"name\",\"value\":{\"GivenName\":\"z\"}},{\"op\":\"remove\",\"path\":\"name.familyName\"}]}", true,
				"{\"id\":\"1\",\"name\":{\"givenName\":\"z\"},\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"emails[value eq \\\"x\\\"].type\",\"value\":\"work\"}]}", true, "400 noTarget");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"userName[\",\"value\":\"x\"}]}", true, "400 invalidPath");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"value\":\"a@x\"}]}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":\"work\",\"value\":\"b@x\"},{\"type\":\"home\",\"value\":\"h@x\"}]}]}", true,
				"{\"emails\":[{\"type\":\"work\",\"value\":\"b@x\"},{\"type\":\"home\",\"value\":\"h@x\"}],\"id\":\"1\",\"userName\":\"a\"}");
	/* RFC 7643 types: a value of the wrong type is 400 invalidValue */
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"name.givenName\",\"value\":{\"x\":1}}]}", true,
				"400 invalidValue");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"userName\",\"value\":7}]}", true, "400 invalidValue");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"active\":true}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"active\",\"value\":\"maybe\"}]}", true, "400 invalidValue");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"a@x\",\"primary\":\"yes\"}]}]}", true,
				"400 invalidValue");
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"roles\",\"value\":[{\"value\":\"r\",\"primary\":\"False\"}]}]}", true,
				"{\"id\":\"1\",\"roles\":[{\"primary\":\"False\",\"value\":\"r\"}],\"userName\":\"a\"}");
	/* a stored value of another type is not the client's: not checked */
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"title\":5}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"userName\",\"value\":\"b\"}]}", true,
				"{\"id\":\"1\",\"title\":5,\"userName\":\"b\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"value\":5}]}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":\"home\",\"value\":\"h@x\"}]}]}", true,
				"{\"emails\":[{\"type\":\"work\",\"value\":5},{\"type\":\"home\",\"value\":\"h@x\"}],\"id\":\"1\",\"userName\":\"a\"}");
	check_patch("{\"id\":\"1\",\"userName\":\"a\",\"emails\":[{\"type\":\"work\",\"value\":5}]}",
				"{\"Operations\":[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":\"home\",\"value\":6}]}]}", true,
				"400 invalidValue");
	/* Okta's group rename repeats the id: no change; another id is */
	check_patch("{\"id\":\"5\",\"displayName\":\"g\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"value\":{\"id\":\"5\",\"displayName\":\"h\"}}]}", false,
				"{\"displayName\":\"h\",\"id\":\"5\"}");
	check_patch("{\"id\":\"5\",\"displayName\":\"g\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"value\":{\"id\":\"6\",\"displayName\":\"h\"}}]}", false,
				"400 mutability");
	/* groups of a User are read-only (RFC 7643 section 4.1.2), whatever the value */
	check_patch("{\"id\":\"1\",\"userName\":\"a\"}",
				"{\"Operations\":[{\"op\":\"replace\",\"path\":\"groups\",\"value\":\"x\"}]}", true, "400 mutability");
	/* PUT: the id repeated is fine, another id is 400 mutability */
	check_put("{\"id\":\"1\",\"userName\":\"a\",\"meta\":{\"version\":\"x\"}}",
			  "{\"id\":\"1\",\"userName\":\"b\",\"meta\":{\"version\":\"y\"}}", true, true,
			  "{\"id\":\"1\",\"meta\":{\"version\":\"x\"},\"userName\":\"b\"}");
	check_put("{\"id\":\"1\",\"userName\":\"a\"}", "{\"id\":\"2\",\"userName\":\"a\"}", true, true,
			  "400 mutability");
	check_put("{\"id\":\"1\",\"userName\":\"a\"}", "{\"userName\":\"a\",\"name\":{\"givenName\":[\"x\"]}}", true, true,
			  "400 invalidValue");
	/* POST bodies */
	check_put("{}", "{\"userName\":\"a\",\"name\":\"not an object\"}", false, true, "400 invalidValue");
	check_put("{}", "{\"userName\":\"a\",\"active\":\"maybe\"}", false, true, "400 invalidValue");
	check_put("{}", "{\"userName\":42}", false, true, "400 invalidValue");
	check_put("{}", "{\"userName\":\"a\",\"active\":\"True\",\"emails\":[{\"value\":\"a@x\",\"primary\":true}]}", false, true,
			  "{\"active\":\"True\",\"emails\":[{\"primary\":true,\"value\":\"a@x\"}],\"userName\":\"a\"}");
	check_put("{}", "{\"displayName\":\"g\",\"members\":{\"value\":\"1\"}}", false, false, "400 invalidValue");
	check_put("{}", "{\"displayName\":\"g\",\"members\":[{\"value\":1}]}", false, false, "400 invalidValue");
	printf("%d of %d tests failed\n", failures, tests);
	return failures ? 1 : 0;
}
