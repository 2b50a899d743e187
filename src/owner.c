/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  Run a statement on an application's tables as the tables' owner.
 *
 * The SQL API is SECURITY DEFINER and owned by a superuser, because it reads
 * and writes the extension's own catalog.  Everything it does to an
 * application object goes through these functions instead of a plain
 * EXECUTE: the statement is planned and run as the owner of the application's
 * tables inside a security-restricted operation, the way VACUUM and REFRESH
 * MATERIALIZED VIEW run index expressions.  The application's triggers,
 * defaults, checks, domains, casts and operators then run with exactly the
 * owner's rights, never a superuser's.
 *
 * Values reach the statement only as parameters; the statement text is built
 * by the caller from identifiers.  A statement run here while the platform
 * API has an origin mark set is the one whose rows capture attributes to the
 * platform (origin.c).
 *
 * IDENTIFICATION
 *	  src/owner.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_owner_query);
PG_FUNCTION_INFO_V1(connector_owner_value);
PG_FUNCTION_INFO_V1(connector_owner_exec);

typedef enum OwnerMode
{
	OWNER_QUERY,				/* every row, into the caller's tuplestore */
	OWNER_VALUE,				/* the first column of the first row, as text */
	OWNER_EXEC					/* the number of rows processed */
} OwnerMode;

/*
 * Act as role from here on, in a security-restricted operation with its own
 * GUC nest level, until ConnectorActAsEnd(save).  An error in between is
 * undone by transaction abort like any user switch.
 */
void
ConnectorActAs(Oid role, ConnectorSavedRole *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec);
	SetUserIdAndSecContext(role, save->sec | SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
}

void
ConnectorActAsEnd(ConnectorSavedRole *save)
{
	AtEOXact_GUC(false, save->nestlevel);
	SetUserIdAndSecContext(save->userid, save->sec);
}

/*
 * Run the statement of a _owner_* call as the role named by its first
 * argument.  The statement's parameters are the call's variadic arguments,
 * with their own types (an untyped literal is text).
 */
static Datum
RunAsOwner(FunctionCallInfo fcinfo, OwnerMode mode, bool *isnull)
{
	Oid			owner;
	char	   *sql;
	int			nargs = PG_NARGS() - 2;
	Oid		   *types = NULL;
	Datum	   *values = NULL;
	char	   *nulls = NULL;
	ConnectorSavedRole save;
	int			ret;
	int			i;
	Datum		result = (Datum) 0;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		platform;

	/* EXECUTE is revoked from PUBLIC; owner code run below is never superuser */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for connector's owner functions"),
				 errdetail("Only the connector API may run statements as a table owner.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "connector: owner and statement are required");
	owner = PG_GETARG_OID(0);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		elog(ERROR, "connector: role %u does not exist", owner);
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (nargs > 0)
	{
		types = palloc(sizeof(Oid) * nargs);
		values = palloc(sizeof(Datum) * nargs);
		nulls = palloc(nargs);
		for (i = 0; i < nargs; i++)
		{
			Oid			t = get_fn_expr_argtype(fcinfo->flinfo, i + 2);

			if (!OidIsValid(t))
				elog(ERROR, "connector: cannot determine the type of parameter %d", i + 1);
			nulls[i] = PG_ARGISNULL(i + 2) ? 'n' : ' ';
			values[i] = nulls[i] == 'n' ? (Datum) 0 : PG_GETARG_DATUM(i + 2);
			if (t == UNKNOWNOID)
			{
				/* an untyped literal arrives as a C string */
				t = TEXTOID;
				if (nulls[i] != 'n')
					values[i] = CStringGetTextDatum(DatumGetCString(values[i]));
			}
			types[i] = t;
		}
	}
	if (mode == OWNER_QUERY)
		InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	ConnectorActAs(owner, &save);
	platform = ConnectorOriginStatementBegin();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "connector: SPI_connect failed");
		ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false,
									mode == OWNER_VALUE ? 1 : 0);
		if (ret < 0)
			elog(ERROR, "connector: statement failed: %s", SPI_result_code_string(ret));
		switch (mode)
		{
			case OWNER_EXEC:
				result = Int64GetDatum((int64) SPI_processed);
				*isnull = false;
				break;
			case OWNER_VALUE:
				*isnull = true;
				if (SPI_tuptable != NULL && SPI_processed > 0)
				{
					char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

					if (v != NULL)
					{
						result = PointerGetDatum(SPI_palloc(VARHDRSZ + strlen(v)));
						SET_VARSIZE(DatumGetPointer(result), VARHDRSZ + strlen(v));
						memcpy(VARDATA(DatumGetPointer(result)), v, strlen(v));
						*isnull = false;
					}
				}
				break;
			case OWNER_QUERY:
				{
					TupleDesc	want = rsinfo->setDesc;
					TupleDesc	got = SPI_tuptable ? SPI_tuptable->tupdesc : NULL;
					uint64		r;

					if (got == NULL || got->natts != want->natts)
						elog(ERROR, "connector: statement returns %d columns, %d expected",
							 got ? got->natts : 0, want->natts);
					for (i = 0; i < want->natts; i++)
						if (getBaseType(TupleDescAttr(got, i)->atttypid) !=
							getBaseType(TupleDescAttr(want, i)->atttypid))
							elog(ERROR, "connector: column %d of the statement has type %s, %s expected",
								 i + 1, format_type_be(TupleDescAttr(got, i)->atttypid),
								 format_type_be(TupleDescAttr(want, i)->atttypid));
					for (r = 0; r < SPI_processed; r++)
						tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
					*isnull = true;
				}
				break;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		if (platform)
			ConnectorOriginStatementEnd();
	}
	PG_END_TRY();
	ConnectorActAsEnd(&save);
	return result;
}

/*
 * connector._owner_query(owner oid, sql text [, VARIADIC args "any"])
 * RETURNS SETOF record: every row of the statement, run as owner.  The
 * caller's column definition list must match the statement's columns.
 */
Datum
connector_owner_query(PG_FUNCTION_ARGS)
{
	bool		isnull;

	RunAsOwner(fcinfo, OWNER_QUERY, &isnull);
	return (Datum) 0;
}

/*
 * connector._owner_value(owner oid, sql text [, VARIADIC args "any"])
 * RETURNS text: the first column of the first row, as text; NULL when there
 * is no row.
 */
Datum
connector_owner_value(PG_FUNCTION_ARGS)
{
	bool		isnull;
	Datum		d = RunAsOwner(fcinfo, OWNER_VALUE, &isnull);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(d);
}

/*
 * connector._owner_exec(owner oid, sql text [, VARIADIC args "any"])
 * RETURNS bigint: run a statement as owner and return the number of rows it
 * processed.
 */
Datum
connector_owner_exec(PG_FUNCTION_ARGS)
{
	bool		isnull;

	PG_RETURN_DATUM(RunAsOwner(fcinfo, OWNER_EXEC, &isnull));
}
