/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *	  The comparison core of reconciliation: desired state against actual
 *	  access in one pass over each side, with hash tables.
 *
 * connector._rc_compare() reads the desired state once (walking the jsonb,
 * or scanning the desired table), the accounts and the grants of the
 * application once (each query's rows go straight from the executor into
 * per-account records, found through a hash table, by a DestReceiver: never
 * materialised), and returns the differences as a jsonb array, sorted as
 * the SQL API documents them.
 *
 * It raises no error of its own about the input: a desired state of the
 * wrong shape, a null account or conflicting enabled values come back as
 * {"invalid": true}, a duplicate account or too many entitlements for a
 * scalar grants column as "dup" and "scalar", and the caller (plpgsql in
 * 70_governance.sql) then runs the SQL checks that raise the documented
 * error.  An id that does not parse raises the type's own data_exception,
 * which the caller catches to name the first bad id the documented way.  So
 * every error message stays in one place, and the fast path checks only.
 *
 * IDENTIFICATION
 *	  src/reconcile.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "connector.h"

PG_FUNCTION_INFO_V1(connector_reconcile_compare);

/* How values of an id type are hashed and compared. */
typedef enum RcKind
{
	RC_INT,						/* int2, int4, int8: the value itself */
	RC_BYTES,					/* text, varchar with a deterministic collation */
	RC_GENERIC					/* the type's default hash and btree opclasses */
} RcKind;

/* An id type: parse from text, hash, compare, print as text. */
typedef struct RcType
{
	Oid			typid;
	RcKind		kind;
	int			maxdigits;		/* RC_INT: digits that cannot overflow */
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	FmgrInfo	hash;			/* RC_GENERIC */
	FmgrInfo	eq;				/* RC_GENERIC */
	FmgrInfo	cmp;			/* RC_GENERIC and RC_BYTES */
	CoercionPathType in_path;	/* text -> typ, as "::typ" does it */
	FmgrInfo	in;
	Oid			in_ioparam;
	int			in_nargs;
	CoercionPathType out_path;	/* typ -> text, as "::text" does it */
	FmgrInfo	out;
} RcType;

/*
 * Desired grants kept inside an account's record: the grants scan then
 * finds them next to the account's flags, whatever order the desired state
 * came in.
 */
#define RC_INLINE 4

/* An entitlement of an account, with whether the other side has it too. */
typedef struct RcGrant
{
	Datum		ent;
	bool		matched;		/* desired list: the account holds it */
} RcGrant;

/*
 * An account, desired or actual (or both), with its grants: the desired
 * ones, sorted and distinct once the desired state is read, and the actual
 * ones that are not desired (revokes, or what an unmanaged account holds).
 * Grants hang off their account, so a grant costs no hash look-up of its
 * own, and the rows of one account, which tables usually keep together,
 * hit the same entry.
 *
 * Records are allocated in chunks and the hash table holds only the key
 * and a pointer, so it stays small enough for the cache.  The accounts
 * scan copies each record it meets out of order to the end, so that the
 * grants scan, which tables usually keep in the same account order, reads
 * the records nearly in sequence whatever order the desired state came in.
 */
typedef struct RcAcc
{
	Datum		key;
	bool		desired;		/* in the desired state */
	bool		manage;			/* its entitlements are given */
	bool		exists;			/* in the accounts table */
	bool		a_enabled;		/* actual status (when exists) */
	bool		seen_true;		/* desired enabled values given */
	bool		seen_false;
	bool		extra_null;		/* an actual grant of a null entitlement */
	bool		moved;			/* copied further on: skip this one */
	int			pos;			/* first desired entry */
	List	   *dup_pos;		/* further entries naming it */
	int			ndes;			/* desired grants */
	int			maxdes;			/* 0: they are in inl */
	RcGrant    *ext;
	RcGrant		inl[RC_INLINE];
	int			nextra;			/* actual grants not desired */
	int			maxextra;
	Datum	   *extra;
} RcAcc;

/* An entry of the accounts hash table. */
typedef struct RcSlot
{
	Datum		key;
	RcAcc	   *acc;
	uint32		hash;
	char		status;			/* simplehash */
} RcSlot;

#define RC_CHUNK 1024			/* account records per chunk */

typedef struct RcState RcState;

static uint32 RcHash(RcType *t, Datum d);
static bool RcEqual(RcType *t, Datum a, Datum b);
static RcType *RcAccType(RcState *st);
static RcType *RcEntType(RcState *st);

#define SH_PREFIX rcacc
#define SH_ELEMENT_TYPE RcSlot
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) RcHash(RcAccType((RcState *) (tb)->private_data), k)
#define SH_EQUAL(tb, a, b) RcEqual(RcAccType((RcState *) (tb)->private_data), a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Known entitlements (the entitlements table's ids). */
typedef struct RcEnt
{
	Datum		key;
	uint32		hash;
	char		status;
} RcEnt;

#define SH_PREFIX rcent
#define SH_ELEMENT_TYPE RcEnt
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) RcHash(RcEntType((RcState *) (tb)->private_data), k)
#define SH_EQUAL(tb, a, b) RcEqual(RcEntType((RcState *) (tb)->private_data), a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct RcState
{
	MemoryContext cxt;
	RcType		acc_type;
	RcType		ent_type;
	bool		complete;
	bool		scalar_shape;	/* one entitlement per account */
	bool		invalid;		/* the caller must run the SQL checks */
	rcacc_hash *accs;
	RcAcc	  **chunks;			/* the records, RC_CHUNK each */
	int			nchunks;
	int			maxchunks;
	int			nlast;			/* records used in the last chunk */
	RcAcc	   *prev;			/* the accounts scan's previous record */
	RcAcc	   *last;			/* the entry of the previous row, or NULL */
	rcent_hash *ents;			/* NULL: every entitlement is known */
	bool		has_dup;		/* an account in two jsonb entries */
	Datum		dup_key;		/* the one whose first entry comes first */
	int			dup_first;
	bool		scalar;			/* too many entitlements on a scalar column */
};

static inline RcType *
RcAccType(RcState *st)
{
	return &st->acc_type;
}

static inline RcType *
RcEntType(RcState *st)
{
	return &st->ent_type;
}

/* The receiver that feeds one query's rows into the state. */
typedef struct RcReceiver
{
	DestReceiver pub;
	RcState    *st;
	void		(*row) (RcState *st, TupleTableSlot *slot);
	int			ntypes;
	Oid			types[3];		/* of the columns; a third one is optional */
} RcReceiver;

/*
 * Look up how values of typid are parsed, hashed, compared and printed,
 * exactly as the SQL casts ("::typ", "::text") and operators would do it.
 */
static void
RcTypeInit(RcType *t, Oid typid)
{
	TypeCacheEntry *tc;
	Oid			funcid;

	memset(t, 0, sizeof(*t));
	t->typid = typid;
	get_typlenbyval(typid, &t->typlen, &t->typbyval);
	t->collation = get_typcollation(typid);

	tc = lookup_type_cache(typid, TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO |
						   TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr) || !OidIsValid(tc->cmp_proc))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reconciliation does not support ids of type %s", format_type_be(typid)),
				 errdetail("The type has no default hash and btree operator classes.")));
	fmgr_info_copy(&t->hash, &tc->hash_proc_finfo, CurrentMemoryContext);
	fmgr_info_copy(&t->eq, &tc->eq_opr_finfo, CurrentMemoryContext);
	fmgr_info_copy(&t->cmp, &tc->cmp_proc_finfo, CurrentMemoryContext);

	if (typid == INT2OID || typid == INT4OID || typid == INT8OID)
	{
		t->kind = RC_INT;
		t->maxdigits = typid == INT2OID ? 4 : typid == INT4OID ? 9 : 18;
	}
	else if ((typid == TEXTOID || typid == VARCHAROID) &&
			 get_collation_isdeterministic(t->collation))
		t->kind = RC_BYTES;		/* texteq is byte equality then */
	else
		t->kind = RC_GENERIC;

	t->in_path = find_coercion_pathway(typid, TEXTOID, COERCION_EXPLICIT, &funcid);
	if (t->in_path == COERCION_PATH_FUNC)
	{
		fmgr_info(funcid, &t->in);
		t->in_nargs = get_func_nargs(funcid);
	}
	else if (t->in_path == COERCION_PATH_COERCEVIAIO)
	{
		Oid			infunc;

		getTypeInputInfo(typid, &infunc, &t->in_ioparam);
		fmgr_info(infunc, &t->in);
	}
	else if (t->in_path != COERCION_PATH_RELABELTYPE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reconciliation does not support ids of type %s", format_type_be(typid)),
				 errdetail("Text cannot be cast to the type.")));

	t->out_path = find_coercion_pathway(TEXTOID, typid, COERCION_EXPLICIT, &funcid);
	if (t->out_path == COERCION_PATH_FUNC)
		fmgr_info(funcid, &t->out);
	else if (t->out_path == COERCION_PATH_COERCEVIAIO)
	{
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &t->out);
	}
	else if (t->out_path != COERCION_PATH_RELABELTYPE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reconciliation does not support ids of type %s", format_type_be(typid)),
				 errdetail("The type cannot be cast to text.")));
}

/*
 * Parse len bytes of s as "s::typ" does.  Plain decimal integers that cannot
 * overflow are read here; everything else goes through the cast, which
 * raises the type's own error for text that does not parse.
 */
static Datum
RcParse(RcType *t, const char *s, int len)
{
	Datum		txt;

	if (t->kind == RC_INT && len > 0)
	{
		int			i = (s[0] == '-') ? 1 : 0;
		int			ndigits = len - i;

		if (ndigits >= 1 && ndigits <= t->maxdigits)
		{
			int64		v = 0;

			for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
				v = v * 10 + (s[i] - '0');
			if (i == len)
			{
				if (s[0] == '-')
					v = -v;
				return t->typid == INT8OID ? Int64GetDatum(v) :
					t->typid == INT4OID ? Int32GetDatum((int32) v) : Int16GetDatum((int16) v);
			}
		}
	}
	if (t->in_path == COERCION_PATH_COERCEVIAIO)
		return InputFunctionCall(&t->in, pnstrdup(s, len), t->in_ioparam, -1);
	txt = PointerGetDatum(cstring_to_text_with_len(s, len));
	if (t->in_path == COERCION_PATH_RELABELTYPE)
		return txt;
	if (t->in_nargs >= 3)
		return FunctionCall3Coll(&t->in, InvalidOid, txt, Int32GetDatum(-1), BoolGetDatum(true));
	if (t->in_nargs == 2)
		return FunctionCall2Coll(&t->in, InvalidOid, txt, Int32GetDatum(-1));
	return FunctionCall1Coll(&t->in, InvalidOid, txt);
}

/* The text of a value, as "value::text" gives it. */
static text *
RcText(RcType *t, Datum d)
{
	if (t->out_path == COERCION_PATH_RELABELTYPE)
		return DatumGetTextPP(d);
	if (t->out_path == COERCION_PATH_FUNC)
		return DatumGetTextPP(FunctionCall1Coll(&t->out, t->collation, d));
	return cstring_to_text(OutputFunctionCall(&t->out, d));
}

/* A value read from a tuple, ready to be hashed and compared. */
static inline Datum
RcNormalise(RcType *t, Datum d)
{
	if (t->typlen == -1)
		return PointerGetDatum(pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d)));
	return d;
}

/* Hash of a value, consistent with RcEqual. */
static inline uint32
RcHash(RcType *t, Datum d)
{
	switch (t->kind)
	{
		case RC_INT:
			return murmurhash32((uint32) DatumGetInt64(d) ^ (uint32) (DatumGetInt64(d) >> 32));
		case RC_BYTES:
			return hash_bytes((const unsigned char *) VARDATA_ANY(DatumGetPointer(d)),
							  VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
		default:
			return DatumGetUInt32(FunctionCall1Coll(&t->hash, t->collation, d));
	}
}

/* Whether two values are equal, as the type's = operator says. */
static inline bool
RcEqual(RcType *t, Datum a, Datum b)
{
	switch (t->kind)
	{
		case RC_INT:
			return a == b;
		case RC_BYTES:
			return VARSIZE_ANY_EXHDR(DatumGetPointer(a)) == VARSIZE_ANY_EXHDR(DatumGetPointer(b)) &&
				memcmp(VARDATA_ANY(DatumGetPointer(a)), VARDATA_ANY(DatumGetPointer(b)),
					   VARSIZE_ANY_EXHDR(DatumGetPointer(a))) == 0;
		default:
			return DatumGetBool(FunctionCall2Coll(&t->eq, t->collation, a, b));
	}
}

/* Order of two values, as ORDER BY on the type sorts them. */
static inline int
RcCompare(RcType *t, Datum a, Datum b)
{
	if (likely(t->kind == RC_INT))
	{
		int64		x = t->typlen == 8 ? DatumGetInt64(a) :
			t->typlen == 4 ? DatumGetInt32(a) : DatumGetInt16(a);
		int64		y = t->typlen == 8 ? DatumGetInt64(b) :
			t->typlen == 4 ? DatumGetInt32(b) : DatumGetInt16(b);

		return x < y ? -1 : x > y ? 1 : 0;
	}
	return DatumGetInt32(FunctionCall2Coll(&t->cmp, t->collation, a, b));
}

/* A copy of d that lives as long as the state. */
static inline Datum
RcKeep(RcType *t, Datum d)
{
	if (t->typbyval)
		return d;
	return datumCopy(d, false, t->typlen);
}

/* The entry of account acc, or NULL; the previous row's entry is reused. */
static inline RcAcc *
RcFindAccount(RcState *st, Datum acc)
{
	if (st->last == NULL || !RcEqual(&st->acc_type, st->last->key, acc))
	{
		RcSlot	   *slot = rcacc_lookup(st->accs, acc);

		st->last = slot == NULL ? NULL : slot->acc;
	}
	return st->last;
}

/* Room for one more account record. */
static RcAcc *
RcAllocAccount(RcState *st)
{
	if (st->nchunks == 0 || st->nlast == RC_CHUNK)
	{
		if (st->nchunks == st->maxchunks)
		{
			st->maxchunks = Max(16, st->maxchunks * 2);
			st->chunks = st->chunks == NULL ? palloc(st->maxchunks * sizeof(RcAcc *)) :
				repalloc(st->chunks, st->maxchunks * sizeof(RcAcc *));
		}
		st->chunks[st->nchunks++] = MemoryContextAllocHuge(st->cxt, RC_CHUNK * sizeof(RcAcc));
		st->nlast = 0;
	}
	return &st->chunks[st->nchunks - 1][st->nlast++];
}

/* A new entry for account acc (not yet in the table). */
static RcAcc *
RcNewAccount(RcState *st, Datum acc)
{
	bool		found;
	RcSlot	   *slot = rcacc_insert(st->accs, acc, &found);
	RcAcc	   *a = RcAllocAccount(st);

	Assert(!found);
	slot->key = a->key = RcKeep(&st->acc_type, acc);
	slot->acc = a;
	a->desired = a->manage = a->exists = a->a_enabled = false;
	a->seen_true = a->seen_false = a->extra_null = a->moved = false;
	a->pos = -1;
	a->dup_pos = NIL;
	a->ndes = a->maxdes = a->nextra = a->maxextra = 0;
	a->ext = NULL;
	a->extra = NULL;
	st->last = a;
	return a;
}

/* Every account record: call with *i = 0 until it returns NULL. */
static inline RcAcc *
RcNextAccount(RcState *st, int64 *i)
{
	int64		end = st->nchunks == 0 ? 0 : (int64) (st->nchunks - 1) * RC_CHUNK + st->nlast;

	for (; *i < end; (*i)++)
	{
		RcAcc	   *a = &st->chunks[*i / RC_CHUNK][*i % RC_CHUNK];

		if (!a->moved)
		{
			(*i)++;
			return a;
		}
	}
	return NULL;
}

/*
 * Record a desired account and return its entry.  group: rows of one
 * account are merged (a desired table); otherwise a second entry for an
 * account is a duplicate.
 */
static RcAcc *
RcDesireAccount(RcState *st, Datum acc, int pos, bool group)
{
	RcAcc	   *a = RcFindAccount(st, acc);

	if (a == NULL)
	{
		a = RcNewAccount(st, acc);
		a->desired = true;
		a->pos = pos;
	}
	else if (!group)
	{
		a->dup_pos = lappend_int(a->dup_pos, pos);
		if (!st->has_dup || a->pos < st->dup_first)
		{
			st->has_dup = true;
			st->dup_key = a->key;
			st->dup_first = a->pos;
		}
	}
	return a;
}

/* The desired grants of a. */
static inline RcGrant *
RcDes(RcAcc *a)
{
	return a->maxdes == 0 ? a->inl : a->ext;
}

/* Record a desired grant of account a; duplicates go at RcFinishDesired. */
static inline void
RcDesireGrant(RcState *st, RcAcc *a, Datum ent)
{
	RcGrant    *des;

	if (a->ndes == (a->maxdes == 0 ? RC_INLINE : a->maxdes))
	{
		if (a->maxdes == 0)
		{
			a->maxdes = RC_INLINE * 4;
			a->ext = palloc(a->maxdes * sizeof(RcGrant));
			memcpy(a->ext, a->inl, sizeof(a->inl));
		}
		else
		{
			a->maxdes *= 2;
			a->ext = repalloc_huge(a->ext, a->maxdes * sizeof(RcGrant));
		}
	}
	des = RcDes(a);
	des[a->ndes].ent = RcKeep(&st->ent_type, ent);
	des[a->ndes].matched = false;
	a->ndes++;
}

/* qsort_arg comparators: grants and entitlements by entitlement, accounts by id. */
static int
RcCompareGrants(const void *x, const void *y, void *arg)
{
	return RcCompare((RcType *) arg, ((const RcGrant *) x)->ent, ((const RcGrant *) y)->ent);
}

static int
RcCompareDatums(const void *x, const void *y, void *arg)
{
	return RcCompare((RcType *) arg, *(const Datum *) x, *(const Datum *) y);
}

static int
RcCompareAccounts(const void *x, const void *y, void *arg)
{
	return RcCompare((RcType *) arg, (*(RcAcc *const *) x)->key, (*(RcAcc *const *) y)->key);
}

/*
 * Sort and deduplicate every account's desired grants, so that actual
 * grants are found by binary search and come out in entitlement order.
 */
static void
RcFinishDesired(RcState *st)
{
	int64		it = 0;
	RcAcc	   *a;

	while ((a = RcNextAccount(st, &it)) != NULL)
	{
		RcGrant    *des = RcDes(a);
		int			i;
		int			n;

		if (a->ndes < 2)
			continue;
		if (a->ndes <= 16)
		{
			/* the usual few: an insertion sort, without a call per comparison */
			for (i = 1; i < a->ndes; i++)
			{
				RcGrant		g = des[i];
				int			j = i;

				for (; j > 0 && RcCompare(&st->ent_type, des[j - 1].ent, g.ent) > 0; j--)
					des[j] = des[j - 1];
				des[j] = g;
			}
		}
		else
			qsort_arg(des, a->ndes, sizeof(RcGrant), RcCompareGrants, &st->ent_type);
		for (n = 1, i = 1; i < a->ndes; i++)
			if (RcCompare(&st->ent_type, des[n - 1].ent, des[i].ent) != 0)
				des[n++] = des[i];
		a->ndes = n;
		if (n > 1 && st->scalar_shape)
			st->scalar = true;
	}
	st->last = NULL;
}

/* The desired grant of ent in a, or NULL. */
static inline RcGrant *
RcFindGrant(RcState *st, RcAcc *a, Datum ent)
{
	RcGrant    *des = RcDes(a);
	int			lo = 0;
	int			hi = a->ndes - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = RcCompare(&st->ent_type, des[mid].ent, ent);

		if (c == 0)
			return &des[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Parse a jsonb string or number as an id, as "x->>'k'::typ" does. */
static Datum
RcParseJsonb(RcType *t, JsonbValue *v)
{
	char	   *s;

	if (v->type == jbvString)
		return RcParse(t, v->val.string.val, v->val.string.len);
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return RcParse(t, s, strlen(s));
}

/*
 * Element i of jsonb array arr as a scalar or a container (jbvBinary),
 * read in place: no iterator, no allocation.
 */
static inline void
RcArrayElement(JsonbContainer *arr, int i, JsonbValue *v)
{
	JEntry		je = arr->children[i];
	char	   *base = (char *) &arr->children[JsonContainerSize(arr)];
	uint32		off = getJsonbOffset(arr, i);

	if (JBE_ISSTRING(je))
	{
		v->type = jbvString;
		v->val.string.val = base + off;
		v->val.string.len = getJsonbLength(arr, i);
	}
	else if (JBE_ISNUMERIC(je))
	{
		v->type = jbvNumeric;
		v->val.numeric = (Numeric) (base + INTALIGN(off));
	}
	else if (JBE_ISCONTAINER(je))
	{
		v->type = jbvBinary;
		v->val.binary.data = (JsonbContainer *) (base + INTALIGN(off));
		v->val.binary.len = getJsonbLength(arr, i) - (INTALIGN(off) - off);
	}
	else
		v->type = JBE_ISNULL(je) ? jbvNull : jbvBool;	/* only the type is read */
}

/*
 * Walk a jsonb desired state once: check its shape (any fault sets
 * st->invalid and stops; the caller's SQL check then names it) and record
 * every account and desired grant.
 */
static void
RcReadJsonb(RcState *st, Jsonb *jb)
{
	JsonbValue	accounts;
	JsonbValue	v;
	JsonbContainer *arr;
	int			nkeys = 0;
	int			pos;

	if (!JB_ROOT_IS_OBJECT(jb) ||
		getKeyJsonValueFromContainer(&jb->root, "accounts", 8, &accounts) == NULL ||
		accounts.type != jbvBinary || !JsonContainerIsArray(accounts.val.binary.data))
	{
		st->invalid = true;
		return;
	}
	nkeys++;
	if (getKeyJsonValueFromContainer(&jb->root, "complete", 8, &v) != NULL)
	{
		if (v.type != jbvBool)
		{
			st->invalid = true;
			return;
		}
		st->complete = v.val.boolean;
		nkeys++;
	}
	if (JsonContainerSize(&jb->root) != nkeys)
	{
		st->invalid = true;		/* a key other than accounts and complete */
		return;
	}

	arr = accounts.val.binary.data;
	for (pos = 0; pos < JsonContainerSize(arr); pos++)
	{
		JsonbContainer *e;
		JsonbValue	id;
		JsonbValue	en;
		JsonbValue	ents;
		bool		has_en;
		bool		has_ents;
		RcAcc	   *a;

		RcArrayElement(arr, pos, &v);
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		{
			st->invalid = true;
			return;
		}
		e = v.val.binary.data;
		has_en = getKeyJsonValueFromContainer(e, "enabled", 7, &en) != NULL;
		has_ents = getKeyJsonValueFromContainer(e, "entitlements", 12, &ents) != NULL;
		if (getKeyJsonValueFromContainer(e, "id", 2, &id) == NULL ||
			(id.type != jbvString && id.type != jbvNumeric) ||
			(has_en && en.type != jbvBool && en.type != jbvNull) ||
			(has_ents && ents.type != jbvNull &&
			 !(ents.type == jbvBinary && JsonContainerIsArray(ents.val.binary.data))) ||
			JsonContainerSize(e) != 1 + has_en + has_ents)	/* an unknown key */
		{
			st->invalid = true;
			return;
		}

		a = RcDesireAccount(st, RcParseJsonb(&st->acc_type, &id), pos, false);
		if (has_en && en.type == jbvBool)
		{
			if (en.val.boolean)
				a->seen_true = true;
			else
				a->seen_false = true;
		}
		if (has_ents && ents.type == jbvBinary)
		{
			JsonbContainer *earr = ents.val.binary.data;
			JsonbValue	ev;
			int			i;

			a->manage = true;
			for (i = 0; i < JsonContainerSize(earr); i++)
			{
				RcArrayElement(earr, i, &ev);
				if (ev.type != jbvString && ev.type != jbvNumeric)
				{
					st->invalid = true;
					return;
				}
				RcDesireGrant(st, a, RcParseJsonb(&st->ent_type, &ev));
			}
		}
	}
}

/* A row of the desired table: (account text, entitlement text, enabled boolean). */
static void
RcTableRow(RcState *st, TupleTableSlot *slot)
{
	bool		isnull;
	Datum		d;
	text	   *t;
	RcAcc	   *a;

	d = slot_getattr(slot, 1, &isnull);
	if (isnull)
	{
		st->invalid = true;		/* a null account */
		return;
	}
	t = DatumGetTextPP(d);
	a = RcDesireAccount(st, RcParse(&st->acc_type, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)), 0, true);
	a->manage = true;			/* a desired table gives every entitlement */
	if (slot->tts_tupleDescriptor->natts >= 3)
	{
		d = slot_getattr(slot, 3, &isnull);
		if (!isnull)
		{
			if (DatumGetBool(d))
				a->seen_true = true;
			else
				a->seen_false = true;
			if (a->seen_true && a->seen_false)
				st->invalid = true; /* conflicting enabled values */
		}
	}
	d = slot_getattr(slot, 2, &isnull);
	if (!isnull)
	{
		t = DatumGetTextPP(d);
		RcDesireGrant(st, a, RcParse(&st->ent_type, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
	}
}

/* A row of the accounts query: (account, enabled boolean). */
static void
RcAccountRow(RcState *st, TupleTableSlot *slot)
{
	bool		isnull;
	bool		enisnull;
	Datum		acc = slot_getattr(slot, 1, &isnull);
	Datum		en = slot_getattr(slot, 2, &enisnull);
	RcSlot	   *e;
	RcAcc	   *a;

	if (isnull)
		return;
	acc = RcNormalise(&st->acc_type, acc);
	e = rcacc_lookup(st->accs, acc);
	if (e == NULL)
	{
		if (!st->complete)
			return;				/* only a complete state reports the others */
		a = RcNewAccount(st, acc);
	}
	else if (!e->acc->exists && e->acc != st->prev + 1)
	{
		/* out of order: the record moves to the end, in this scan's order */
		st->prev = e->acc;
		a = RcAllocAccount(st);
		*a = *e->acc;
		e->acc->moved = true;
		e->acc = a;
	}
	else
		a = st->prev = e->acc;	/* already in order (or seen before) */
	st->last = a;
	a->exists = true;
	a->a_enabled = !enisnull && DatumGetBool(en);
}

/* A row of the actual grants query: (account, entitlement). */
static void
RcGrantRow(RcState *st, TupleTableSlot *slot)
{
	bool		isnull;
	Datum		acc = slot_getattr(slot, 1, &isnull);
	Datum		ent;
	RcAcc	   *a;
	RcGrant    *g;

	if (isnull)
		return;					/* joins nothing */
	a = RcFindAccount(st, RcNormalise(&st->acc_type, acc));
	/* only managed desired accounts and unmanaged ones show actual grants */
	if (a == NULL || (a->desired && !a->manage) || (!a->desired && !a->exists))
		return;
	ent = slot_getattr(slot, 2, &isnull);
	if (isnull)
	{
		a->extra_null = true;
		return;
	}
	ent = RcNormalise(&st->ent_type, ent);
	g = RcFindGrant(st, a, ent);
	if (g != NULL)
	{
		g->matched = true;
		return;
	}
	if (a->nextra == a->maxextra)
	{
		a->maxextra = Max(4, a->maxextra * 2);
		a->extra = a->extra == NULL ? palloc(a->maxextra * sizeof(Datum)) :
			repalloc_huge(a->extra, a->maxextra * sizeof(Datum));
	}
	a->extra[a->nextra++] = RcKeep(&st->ent_type, ent);
}

/* A row of the entitlements query: (id). */
static void
RcEntRow(RcState *st, TupleTableSlot *slot)
{
	bool		isnull;
	bool		found;
	Datum		d = slot_getattr(slot, 1, &isnull);
	RcEnt	   *e;

	if (isnull)
		return;
	d = RcNormalise(&st->ent_type, d);
	e = rcent_insert(st->ents, d, &found);
	if (!found)
		e->key = RcKeep(&st->ent_type, d);
}

/* DestReceiver callback: one row, into the state's memory. */
static bool
RcReceiveSlot(TupleTableSlot *slot, DestReceiver *self)
{
	RcReceiver *r = (RcReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->st->cxt);

	r->row(r->st, slot);
	MemoryContextSwitchTo(old);
	return true;
}

/* The query must return the columns the row function reads. */
static void
RcStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	RcReceiver *r = (RcReceiver *) self;
	int			i;

	if (typeinfo->natts < 1 || typeinfo->natts > 3 ||
		(typeinfo->natts < r->ntypes && !(r->ntypes == 3 && typeinfo->natts == 2)))
		elog(ERROR, "reconciliation query returns %d columns", typeinfo->natts);
	for (i = 0; i < typeinfo->natts; i++)
		if (i >= r->ntypes || TupleDescAttr(typeinfo, i)->atttypid != r->types[i])
			elog(ERROR, "column %d of a reconciliation query has type %s, not %s", i + 1,
				 format_type_be(TupleDescAttr(typeinfo, i)->atttypid),
				 i < r->ntypes ? format_type_be(r->types[i]) : "none");
}

/* Nothing to release: the rows are consumed as they come. */
static void
RcShutdown(DestReceiver *self)
{
}

static void
RcDestroy(DestReceiver *self)
{
}

/*
 * Run query sql (built by the caller from identifiers only) and feed its
 * rows to row(); the result columns must have the types given.
 */
static void
RcRunQuery(RcState *st, const char *sql, void (*row) (RcState *, TupleTableSlot *),
		   int ntypes, Oid t1, Oid t2, Oid t3)
{
	RcReceiver	r;
	SPIExecuteOptions opts;
	int			rc;

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = RcReceiveSlot;
	r.pub.rStartup = RcStartup;
	r.pub.rShutdown = RcShutdown;
	r.pub.rDestroy = RcDestroy;
	r.pub.mydest = DestNone;
	r.st = st;
	r.row = row;
	r.ntypes = ntypes;
	r.types[0] = t1;
	r.types[1] = t2;
	r.types[2] = t3;

	memset(&opts, 0, sizeof(opts));
	opts.read_only = true;
	opts.dest = (DestReceiver *) &r;
	rc = SPI_execute_extended(sql, &opts);
	/* SPI says "utility" for a SELECT whose rows go to a DestNone receiver */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "reconciliation query failed: %s", SPI_result_code_string(rc));
	st->last = NULL;
}

/* Small wrappers around pushJsonbValue for the result. */
static void
PushKey(JsonbParseState **ps, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = strlen(key);
	v.val.string.val = (char *) key;
	pushJsonbValue(ps, WJB_KEY, &v);
}

static void
PushString(JsonbParseState **ps, JsonbIteratorToken tok, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = len;
	v.val.string.val = (char *) s;
	pushJsonbValue(ps, tok, &v);
}

static void
PushText(JsonbParseState **ps, JsonbIteratorToken tok, text *t)
{
	PushString(ps, tok, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

static void
PushBool(JsonbParseState **ps, JsonbIteratorToken tok, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(ps, tok, &v);
}

static void
PushNull(JsonbParseState **ps, JsonbIteratorToken tok)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(ps, tok, &v);
}

static void
PushInt(JsonbParseState **ps, JsonbIteratorToken tok, int64 i)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(i);
	pushJsonbValue(ps, tok, &v);
}

/* A result row: {"action", "account", "entitlement", "detail": {...}}. */
static void
PushRowStart(RcState *st, JsonbParseState **ps, const char *action, text *acc, Datum ent,
			 bool entnull)
{
	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	PushKey(ps, "action");
	PushString(ps, WJB_VALUE, action, strlen(action));
	PushKey(ps, "account");
	PushText(ps, WJB_VALUE, acc);
	PushKey(ps, "entitlement");
	if (entnull)
		PushNull(ps, WJB_VALUE);
	else
		PushText(ps, WJB_VALUE, RcText(&st->ent_type, ent));
	PushKey(ps, "detail");
	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
}

static void
PushRowEnd(JsonbParseState **ps)
{
	pushJsonbValue(ps, WJB_END_OBJECT, NULL);
	pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

static void
PushDesiredActual(JsonbParseState **ps, bool desired, bool actual)
{
	PushKey(ps, "desired");
	PushBool(ps, WJB_VALUE, desired);
	PushKey(ps, "actual");
	PushBool(ps, WJB_VALUE, actual);
}

/*
 * The rows of one account, in the documented order: unknown_account,
 * unmanaged_account, disable or enable, grants, revokes (each by
 * entitlement).  Its extra grants are sorted and distinct on return.
 */
static void
PushAccountRows(RcState *st, JsonbParseState **ps, RcAcc *a)
{
	bool		enabled = a->seen_true;
	bool		has_enabled = a->seen_true || a->seen_false;
	text	   *acc = RcText(&st->acc_type, a->key);
	int			i;

	if (a->desired && !a->exists)
	{
		PushRowStart(st, ps, "unknown_account", acc, (Datum) 0, true);
		PushKey(ps, "reason");
		PushString(ps, WJB_VALUE, "the account does not exist", 26);
		PushKey(ps, "desired");
		pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
		if (has_enabled)
		{
			PushKey(ps, "enabled");
			PushBool(ps, WJB_VALUE, enabled);
		}
		if (a->manage)
		{
			PushKey(ps, "entitlements");
			pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
			for (i = 0; i < a->ndes; i++)
				PushText(ps, WJB_ELEM, RcText(&st->ent_type, RcDes(a)[i].ent));
			pushJsonbValue(ps, WJB_END_ARRAY, NULL);
		}
		pushJsonbValue(ps, WJB_END_OBJECT, NULL);
		PushRowEnd(ps);
	}
	else if (!a->desired)
	{
		PushRowStart(st, ps, "unmanaged_account", acc, (Datum) 0, true);
		PushKey(ps, "reason");
		PushString(ps, WJB_VALUE, "the account is absent from a complete desired state", 51);
		PushKey(ps, "actual");
		pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
		PushKey(ps, "enabled");
		PushBool(ps, WJB_VALUE, a->a_enabled);
		PushKey(ps, "entitlements");
		pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < a->nextra; i++)
			PushText(ps, WJB_ELEM, RcText(&st->ent_type, a->extra[i]));
		if (a->extra_null)
			PushNull(ps, WJB_ELEM); /* NULLS LAST */
		pushJsonbValue(ps, WJB_END_ARRAY, NULL);
		pushJsonbValue(ps, WJB_END_OBJECT, NULL);
		PushRowEnd(ps);
		return;
	}
	else if (has_enabled && enabled != a->a_enabled)
	{
		PushRowStart(st, ps, enabled ? "enable" : "disable", acc, (Datum) 0, true);
		PushDesiredActual(ps, enabled, a->a_enabled);
		PushRowEnd(ps);
	}

	/* grants: desired, not held, on an account that exists */
	if (a->exists)
		for (i = 0; i < a->ndes; i++)
		{
			if (RcDes(a)[i].matched)
				continue;
			PushRowStart(st, ps, "grant", acc, RcDes(a)[i].ent, false);
			PushDesiredActual(ps, true, false);
			if (st->ents != NULL && rcent_lookup(st->ents, RcDes(a)[i].ent) == NULL)
			{
				PushKey(ps, "unknown_entitlement");
				PushBool(ps, WJB_VALUE, true);
				PushKey(ps, "reason");
				PushString(ps, WJB_VALUE, "the entitlement does not exist; never applied", 45);
			}
			PushRowEnd(ps);
		}
	/* revokes: held, not desired, on a managed account */
	for (i = 0; i < a->nextra; i++)
	{
		PushRowStart(st, ps, "revoke", acc, a->extra[i], false);
		PushDesiredActual(ps, false, true);
		PushRowEnd(ps);
	}
	if (a->extra_null)
	{
		PushRowStart(st, ps, "revoke", acc, (Datum) 0, true);
		PushDesiredActual(ps, false, true);
		PushRowEnd(ps);
	}
}

/* Whether account a has a difference to report; sorts its extra grants. */
static bool
RcHasRows(RcState *st, RcAcc *a)
{
	int			i;

	if (a->nextra > 1)
	{
		int			n = 1;

		qsort_arg(a->extra, a->nextra, sizeof(Datum), RcCompareDatums, &st->ent_type);
		for (i = 1; i < a->nextra; i++)
			if (RcCompare(&st->ent_type, a->extra[n - 1], a->extra[i]) != 0)
				a->extra[n++] = a->extra[i];
		a->nextra = n;
	}
	if (!a->desired || !a->exists || a->nextra > 0 || a->extra_null)
		return true;
	if ((a->seen_true || a->seen_false) && a->seen_true != a->a_enabled)
		return true;
	for (i = 0; i < a->ndes; i++)
		if (!RcDes(a)[i].matched)
			return true;
	return false;
}

/* The differences, by account, as a jsonb array. */
static void
RcPushRows(RcState *st, JsonbParseState **ps)
{
	int64		it = 0;
	RcAcc	   *a;
	RcAcc	  **list;
	int			n = 0;
	int			max = 64;
	int			i;

	list = palloc(max * sizeof(RcAcc *));
	while ((a = RcNextAccount(st, &it)) != NULL)
	{
		if (!RcHasRows(st, a))
			continue;
		if (n == max)
		{
			max *= 2;
			list = repalloc_huge(list, max * sizeof(RcAcc *));
		}
		list[n++] = a;
	}
	if (n > 1)
		qsort_arg(list, n, sizeof(RcAcc *), RcCompareAccounts, &st->acc_type);
	pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < n; i++)
		PushAccountRows(st, ps, list[i]);
	pushJsonbValue(ps, WJB_END_ARRAY, NULL);
}

/* An OID under key of a mapping object (stored as text), or InvalidOid. */
static Oid
RcJsonbOid(JsonbContainer *cache, const char *key)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(cache, key, strlen(key), &v) == NULL)
		return InvalidOid;
	if (v.type == jbvString)
		return DatumGetObjectId(DirectFunctionCall1(oidin,
													CStringGetDatum(pnstrdup(v.val.string.val,
																			 v.val.string.len))));
	if (v.type == jbvNumeric)
		return DatumGetObjectId(DirectFunctionCall1(numeric_int8, NumericGetDatum(v.val.numeric)));
	return InvalidOid;
}

/*
 * How many accounts the table will hold, to size it once: the entries of a
 * jsonb desired state and, when the state is complete (every account of the
 * application gets an entry), the accounts table's row estimate.  Growing a
 * large table step by step costs more than the scans.
 */
static uint32
RcExpectedAccounts(Jsonb *m, Jsonb *desired)
{
	double		n = 1024;
	bool		complete = desired == NULL;
	JsonbValue	v;

	if (desired != NULL && JB_ROOT_IS_OBJECT(desired))
	{
		if (getKeyJsonValueFromContainer(&desired->root, "accounts", 8, &v) != NULL &&
			v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
			n = Max(n, JsonContainerSize(v.val.binary.data));
		complete = getKeyJsonValueFromContainer(&desired->root, "complete", 8, &v) != NULL &&
			v.type == jbvBool && v.val.boolean;
	}
	if (complete &&
		getKeyJsonValueFromContainer(&m->root, "accounts", 8, &v) != NULL &&
		v.type == jbvBinary && OidIsValid(RcJsonbOid(v.val.binary.data, "relid")))
	{
		Relation	rel = relation_open(RcJsonbOid(v.val.binary.data, "relid"), AccessShareLock);

		n = Max(n, rel->rd_rel->reltuples);
		relation_close(rel, NoLock);	/* the accounts query locks it anyway */
	}
	return (uint32) Min(n, 4 * 1024 * 1024);	/* an estimate: it may still grow */
}

/*
 * connector._rc_compare(m jsonb, desired jsonb, tab_sql text, acc_sql text,
 *						 gr_sql text, ent_sql text) returns jsonb
 *
 * m is the write mapping (types and grants shape under "cache").  The
 * desired state is desired (jsonb) or, when that is NULL, the rows of
 * tab_sql (account text, entitlement text[, enabled boolean]).  acc_sql
 * gives the actual accounts (id, enabled boolean), gr_sql the actual grants
 * (account, entitlement) in the id types, ent_sql the existing entitlement
 * ids (NULL: every entitlement exists).  Returns {"complete", "rows"} and,
 * when the caller has an error to raise, "invalid", "dup" or "scalar".
 */
Datum
connector_reconcile_compare(PG_FUNCTION_ARGS)
{
	Jsonb	   *m = PG_GETARG_JSONB_P(0);
	Jsonb	   *desired = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *tab_sql = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *acc_sql = text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *gr_sql = text_to_cstring(PG_GETARG_TEXT_PP(4));
	char	   *ent_sql = PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext old;
	RcState    *st;
	JsonbValue	cache;
	JsonbValue	v;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Oid			acc_typ;
	Oid			ent_typ;
	Oid			owner;
	ConnectorSavedRole as_owner;

	if (getKeyJsonValueFromContainer(&m->root, "cache", 5, &cache) == NULL ||
		cache.type != jbvBinary)
		elog(ERROR, "reconciliation needs the write mapping");
	acc_typ = RcJsonbOid(cache.val.binary.data, "account_type");
	ent_typ = RcJsonbOid(cache.val.binary.data, "entitlement_type");
	if (!OidIsValid(acc_typ))
		elog(ERROR, "the write mapping has no account type");
	if (!OidIsValid(ent_typ))
		ent_typ = TEXTOID;		/* no grants and no entitlements */

	st = palloc0(sizeof(RcState));
	st->cxt = AllocSetContextCreate(CurrentMemoryContext, "connector reconcile",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(st->cxt);
	RcTypeInit(&st->acc_type, acc_typ);
	RcTypeInit(&st->ent_type, ent_typ);
	st->scalar_shape =
		getKeyJsonValueFromContainer(cache.val.binary.data, "grant_shape", 11, &v) != NULL &&
		v.type == jbvString && v.val.string.len == 6 && strncmp(v.val.string.val, "scalar", 6) == 0;
	st->accs = rcacc_create(st->cxt, RcExpectedAccounts(m, desired), st);

	owner = RcJsonbOid(&m->root, "owner");
	if (!OidIsValid(owner))
		elog(ERROR, "the write mapping has no owner");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(st->cxt);	/* SPI_connect switched to its own */

	/*
	 * Ids are parsed and the application's tables read as their owner (a
	 * domain's check or an operator is the owner's code); a desired table is
	 * read with the rights of the role that called the API.
	 */
	ConnectorActAs(owner, &as_owner);
	if (desired != NULL)
		RcReadJsonb(st, desired);
	else
	{
		ConnectorSavedRole as_caller;

		st->complete = true;	/* a desired table lists every account */
		ConnectorActAs(GetOuterUserId(), &as_caller);
		RcRunQuery(st, tab_sql, RcTableRow, 3, TEXTOID, TEXTOID, BOOLOID);
		ConnectorActAsEnd(&as_caller);
	}

	if (!st->invalid)
		RcFinishDesired(st);

	/* the actual side, unless the caller must raise an error first */
	if (!st->invalid && !st->has_dup && !st->scalar)
	{
		RcRunQuery(st, acc_sql, RcAccountRow, 2, acc_typ, BOOLOID, InvalidOid);
		RcRunQuery(st, gr_sql, RcGrantRow, 2, acc_typ, ent_typ, InvalidOid);
		if (ent_sql != NULL)
		{
			st->ents = rcent_create(st->cxt, 256, st);
			RcRunQuery(st, ent_sql, RcEntRow, 1, ent_typ, InvalidOid, InvalidOid);
		}
	}
	ConnectorActAsEnd(&as_owner);
	SPI_finish();

	/* the result, in the caller's memory */
	MemoryContextSwitchTo(caller);
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	if (st->invalid)
	{
		PushKey(&ps, "invalid");
		PushBool(&ps, WJB_VALUE, true);
	}
	else
	{
		PushKey(&ps, "complete");
		PushBool(&ps, WJB_VALUE, st->complete);
		if (st->has_dup)
		{
			RcAcc	   *dup = rcacc_lookup(st->accs, st->dup_key)->acc;
			ListCell   *lc;

			PushKey(&ps, "dup");
			pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
			PushKey(&ps, "account");
			PushText(&ps, WJB_VALUE, RcText(&st->acc_type, dup->key));
			PushKey(&ps, "pos");
			pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
			PushInt(&ps, WJB_ELEM, dup->pos);
			foreach(lc, dup->dup_pos)
				PushInt(&ps, WJB_ELEM, lfirst_int(lc));
			pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
			pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		}
		else if (st->scalar)
		{
			PushKey(&ps, "scalar");
			PushBool(&ps, WJB_VALUE, true);
		}
		else
		{
			PushKey(&ps, "rows");
			RcPushRows(st, &ps);
		}
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(st->cxt);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
