/*
 * Postgres rows into column buffers that DuckDB copies as they are: the backend-thread half of
 * llm_sql_pg_scan (src/local/pg_scan.rs).
 *
 * Rust calls each function here once per batch of up to a vector's worth of rows, through one
 * pgrx guard; everything per row and per value happens in C, where Postgres's static inline
 * functions and varlena macros are at hand and no guard is paid per call. An ERROR raised here
 * (a cancel, a value DuckDB cannot hold exactly) reaches Rust as a Postgres error through that
 * guard.
 *
 * Two sources of rows, one conversion:
 * - a heap scan of the relation with the statement's snapshot, after the same privilege check
 *   the executor makes (ExecCheckPermissions), used when row-level security does not apply;
 * - an SPI cursor (a portal), for everything else: Postgres's rewriter and executor apply
 *   policies, views and the rest.
 * Values are converted per column kind (LLM_SQL_KIND_*) into DuckDB's physical layout: fixed
 * width values into `data`, text and bytes into `bytes` with `offsets`, NULL flags in `nulls`.
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "varatt.h"

#include "pg_columns.h"

#define MAX_READERS 64
static Reader *readers[MAX_READERS];
static int32 next_reader_id = 1;
static bool callbacks_registered = false;

/* Resources of aborted (sub)transactions are released by Postgres: forget their readers. */
static void
forget_readers(SubTransactionId aborted, bool all)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (readers[i] != NULL && (all || readers[i]->subxact == aborted))
			readers[i] = NULL;
}

static void
on_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		forget_readers(InvalidSubTransactionId, true);
}

static void
on_subxact(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_readers(sub, false);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (int i = 0; i < MAX_READERS; i++)
			if (readers[i] != NULL && readers[i]->subxact == sub)
				readers[i]->subxact = parent;
}

Reader *
new_reader(void)
{
	MemoryContext context;
	Reader	   *reader;
	int			slot = -1;

	for (int i = 0; i < MAX_READERS && slot < 0; i++)
		if (readers[i] == NULL)
			slot = i;
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many local tables in one DuckDB statement (at most %d)", MAX_READERS),
				 errhint("Split the statement, or read some of the tables through a subquery.")));
	if (!callbacks_registered)
	{
		RegisterXactCallback(on_xact, NULL);
		RegisterSubXactCallback(on_subxact, NULL);
		callbacks_registered = true;
	}
	context = AllocSetContextCreate(CurTransactionContext, "llm_sql local scan",
									ALLOCSET_DEFAULT_SIZES);
	reader = MemoryContextAllocZero(context, sizeof(Reader));
	reader->id = next_reader_id++;
	if (next_reader_id <= 0)
		next_reader_id = 1;
	reader->subxact = GetCurrentSubTransactionId();
	reader->context = context;
	reader->batch = AllocSetContextCreate(context, "llm_sql local scan batch",
										  ALLOCSET_DEFAULT_SIZES);
	readers[slot] = reader;
	return reader;
}

Reader *
find_reader(int32 id)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (readers[i] != NULL && readers[i]->id == id)
			return readers[i];
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("this local table scan has already ended")));
	return NULL;				/* not reached */
}

/*
 * The executor's own privilege check (ExecCheckPermissions, so ExecutorCheckPerms_hook modules
 * are asked too): SELECT on the table, or on every column of `attnums` (on any, for none).
 * Raises the executor's error.
 */
void
check_select_permission(Relation relation, const int16 *attnums, int32 count)
{
	RTEPermissionInfo *permissions = makeNode(RTEPermissionInfo);
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	permissions->relid = RelationGetRelid(relation);
	permissions->inh = false;
	permissions->requiredPerms = ACL_SELECT;
	permissions->checkAsUser = InvalidOid;
	for (int i = 0; i < count; i++)
		permissions->selectedCols =
			bms_add_member(permissions->selectedCols,
						   attnums[i] - FirstLowInvalidHeapAttributeNumber);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(relation);
	rte->relkind = relation->rd_rel->relkind;
	rte->rellockmode = AccessShareLock;
	rte->perminfoindex = 1;
	ExecCheckPermissions(list_make1(rte), list_make1(permissions), true);
}

/*
 * Opens `relid` for a heap read of attributes `attnums` (1-based, `count` of them), or returns
 * NULL when the read must go through Postgres's executor instead: row-level security applies,
 * the relation is not a plain table or materialized view, or there is no snapshot. Raises the
 * executor's own error when the current role may not read those columns. Also raises an error
 * when a column's type is no longer `types[i]`/`typmods[i]` (the table was altered after the
 * statement looked at it). The lock is held until the transaction ends.
 */
Relation
open_for_heap_read(Oid relid, const int16 *attnums, const Oid *types, const int32 *typmods,
				   int32 count, int *last_attno)
{
	Relation	relation;
	int			last = 0;

	if (!ActiveSnapshotSet())
		return NULL;
	relation = table_open(relid, AccessShareLock);
	if ((relation->rd_rel->relkind != RELKIND_RELATION &&
		 relation->rd_rel->relkind != RELKIND_MATVIEW) ||
		!RelationIsPopulated(relation))
	{
		table_close(relation, NoLock);
		return NULL;
	}

	check_select_permission(relation, attnums, count);

	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
	{
		table_close(relation, NoLock);
		return NULL;
	}

	for (int i = 0; i < count; i++)
	{
		Form_pg_attribute attribute;

		if (attnums[i] < 1 || attnums[i] > RelationGetDescr(relation)->natts)
			attribute = NULL;
		else
			attribute = TupleDescAttr(RelationGetDescr(relation), attnums[i] - 1);
		if (attribute == NULL || attribute->attisdropped ||
			attribute->atttypid != types[i] || attribute->atttypmod != typmods[i])
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("table \"%s\" was altered while the statement read it",
							RelationGetRelationName(relation)),
					 errhint("Run the statement again.")));
		last = Max(last, attnums[i]);
	}
	*last_attno = last;
	return relation;
}

/* Sets a TID range scan to blocks [start, end). */
static void
set_block_range(Reader *reader, bool first)
{
	ItemPointerData min;
	ItemPointerData max;
	BlockNumber start = reader->range_starts[reader->range];
	BlockNumber end = reader->range_ends[reader->range];

	ItemPointerSet(&min, start, FirstOffsetNumber);
	ItemPointerSet(&max, end - 1, MaxOffsetNumber);
	if (first)
		reader->scan = table_beginscan_tidrange(reader->relation, reader->snapshot, &min, &max);
	else
		table_rescan_tidrange(reader->scan, &min, &max);
}

/*
 * Starts a heap scan (see open_for_heap_read; 0 when the executor must read instead) with the
 * statement's snapshot. `nranges` < 0 reads every block; otherwise only blocks
 * [range_starts[i], range_ends[i]) (ascending, non-empty ranges).
 */
int32
llm_sql_heap_begin(Oid relid, const int16 *attnums, const Oid *types, const int32 *typmods,
				   int32 count, const uint32 *range_starts, const uint32 *range_ends,
				   int32 nranges)
{
	Relation	relation;
	MemoryContext old;
	Reader	   *reader;
	int			last = 0;

	relation = open_for_heap_read(relid, attnums, types, typmods, count, &last);
	if (relation == NULL)
		return 0;
	reader = new_reader();
	old = MemoryContextSwitchTo(reader->context);
	reader->relation = relation;
	reader->owner = CurrentResourceOwner;
	reader->snapshot = RegisterSnapshot(GetActiveSnapshot());
	reader->slot = table_slot_create(relation, NULL);
	reader->last_attno = last;
	reader->nranges = nranges < 0 ? -1 : nranges;
	if (nranges < 0)
		reader->scan = table_beginscan(relation, reader->snapshot, 0, NULL);
	else if (nranges > 0)
	{
		reader->range_starts = palloc(sizeof(BlockNumber) * nranges);
		reader->range_ends = palloc(sizeof(BlockNumber) * nranges);
		memcpy(reader->range_starts, range_starts, sizeof(BlockNumber) * nranges);
		memcpy(reader->range_ends, range_ends, sizeof(BlockNumber) * nranges);
		set_block_range(reader, true);
	}
	MemoryContextSwitchTo(old);
	return reader->id;
}

/* A reader for rows fetched from a cursor (`llm_sql_cursor_fill`). */
int32
llm_sql_cursor_begin(void)
{
	return new_reader()->id;
}

/* Ends a scan; nothing to do when its transaction already released it. */
void
llm_sql_reader_end(int32 id)
{
	for (int i = 0; i < MAX_READERS; i++)
	{
		Reader	   *reader = readers[i];

		if (reader == NULL || reader->id != id)
			continue;
		readers[i] = NULL;
		if (reader->relation != NULL)
		{
			ResourceOwner caller = CurrentResourceOwner;

			/* Released where they were taken, whatever called us. */
			CurrentResourceOwner = reader->owner;
			if (reader->build != NULL)
				copy_build_end(reader);
			if (reader->slot != NULL)
				ExecDropSingleTupleTableSlot(reader->slot);
			if (reader->scan != NULL)
				table_endscan(reader->scan);
			if (reader->snapshot != NULL)
				UnregisterSnapshot(reader->snapshot);
			/* The lock stays until the transaction ends, as the executor's does. */
			table_close(reader->relation, NoLock);
			CurrentResourceOwner = caller;
		}
		MemoryContextDelete(reader->context);
		return;
	}
}

/* ------------------------------------------------------------------------------------------
 * Conversion.
 */

static void
append_bytes(LlmSqlColumn *column, const char *bytes, Size len)
{
	if (column->bytes_len + len > column->bytes_cap)
	{
		uint64		wanted = Max(column->bytes_cap * 2, column->bytes_len + len);

		wanted = Max(wanted, 8192);
		if (wanted > MaxAllocSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("values of column \"%s\" are too large to read in one batch",
							column->name)));
		column->bytes = column->bytes == NULL ? palloc(wanted) : repalloc(column->bytes, wanted);
		column->bytes_cap = wanted;
	}
	memcpy(column->bytes + column->bytes_len, bytes, len);
	column->bytes_len += len;
}

/* Text in the server's encoding, appended as UTF-8 (which DuckDB requires). */
static void
append_text(LlmSqlColumn *column, const char *text, Size len)
{
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		char	   *converted = pg_server_to_any(text, len, PG_UTF8);

		if (converted != text)
			len = strlen(converted);
		text = converted;
		/* SQL_ASCII text is not converted: it must already be UTF-8. */
		(void) pg_verify_mbstr(PG_UTF8, text, len, false);
	}
	append_bytes(column, text, len);
}

static const int64 powers_of_ten[19] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	INT64CONST(10000000000), INT64CONST(100000000000), INT64CONST(1000000000000),
	INT64CONST(10000000000000), INT64CONST(100000000000000), INT64CONST(1000000000000000),
	INT64CONST(10000000000000000), INT64CONST(100000000000000000),
	INT64CONST(1000000000000000000)
};

static int128
power_of_ten(int exponent)
{
	if (exponent <= 18)
		return powers_of_ten[exponent];
	return (int128) powers_of_ten[18] * power_of_ten(exponent - 18);
}

/* numeric's on-disk layout (numeric.c keeps it private; it is fixed by pg_upgrade). */
#define NUMERIC_HEADER_BITS(n) (*(const uint16 *) VARDATA_ANY(n))
#define NUMERIC_IS_SHORT_HEADER(header) (((header) & 0x8000) != 0)
#define NUMERIC_SHORT_SIGN_MASK 0x2000
#define NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUMERIC_SHORT_WEIGHT_MASK 0x003F
#define NUMERIC_NEG 0x4000
#define NUMERIC_SIGN_MASK 0xC000

pg_noreturn static void
decimal_does_not_fit(const LlmSqlColumn *column, Numeric value, const char *relation)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)));

	if (strlen(text) > 60)
		text[60] = '\0';
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("numeric value %s of column \"%s\" of %s does not fit DuckDB's DECIMAL(%d,%d)",
					text, column->name, relation, column->width, column->scale),
			 errdetail("DuckDB reads this column as DECIMAL(%d,%d): at most %d digits before the "
					   "point and %d after, and no NaN or infinity. llm_sql does not round it "
					   "silently.",
					   column->width, column->scale, column->width - column->scale,
					   column->scale),
			 errhint("Declare the column's precision and scale (numeric(p,s) with p <= 38), or "
					 "SET llm_sql.numeric_as_double = on to read it as DOUBLE (inexact).")));
}

/* `value` × 10^scale as an integer of at most `width` digits, or an ERROR. */
static int128
decimal_value(const LlmSqlColumn *column, Numeric value, const char *relation)
{
	uint16		header;
	const int16 *digits;
	int			ndigits;
	int			weight;
	bool		negative;
	int128		result = 0;

	if (numeric_is_nan(value) || numeric_is_inf(value))
		decimal_does_not_fit(column, value, relation);
	header = NUMERIC_HEADER_BITS(value);
	if (NUMERIC_IS_SHORT_HEADER(header))
	{
		digits = (const int16 *) (VARDATA_ANY(value) + sizeof(uint16));
		ndigits = (VARSIZE_ANY_EXHDR(value) - sizeof(uint16)) / sizeof(int16);
		weight = (header & NUMERIC_SHORT_WEIGHT_MASK) |
			((header & NUMERIC_SHORT_WEIGHT_SIGN_MASK) ? ~NUMERIC_SHORT_WEIGHT_MASK : 0);
		negative = (header & NUMERIC_SHORT_SIGN_MASK) != 0;
	}
	else
	{
		digits = (const int16 *) (VARDATA_ANY(value) + 2 * sizeof(uint16));
		ndigits = (VARSIZE_ANY_EXHDR(value) - 2 * sizeof(uint16)) / sizeof(int16);
		weight = *(const int16 *) (VARDATA_ANY(value) + sizeof(uint16));
		negative = (header & NUMERIC_SIGN_MASK) == NUMERIC_NEG;
	}
	/* Digit i is worth digits[i] × 10000^(weight - i), so × 10^(4 (weight - i) + scale) here. */
	for (int i = 0; i < ndigits; i++)
	{
		int			exponent = 4 * (weight - i) + column->scale;
		int128		part;

		if (digits[i] == 0)
			continue;
		if (exponent < 0)
		{
			/* Below the scale: only zeros may be there. */
			if (exponent <= -4 || digits[i] % powers_of_ten[-exponent] != 0)
				decimal_does_not_fit(column, value, relation);
			part = digits[i] / powers_of_ten[-exponent];
		}
		else if (exponent > 38 ||
				 __builtin_mul_overflow((int128) digits[i], power_of_ten(exponent), &part))
			decimal_does_not_fit(column, value, relation);
		if (__builtin_add_overflow(result, part, &result))
			decimal_does_not_fit(column, value, relation);
	}
	if (result >= power_of_ten(column->width))
		decimal_does_not_fit(column, value, relation);
	return negative ? -result : result;
}

static void
put_decimal(LlmSqlColumn *column, int row, Numeric value, const char *relation)
{
	int128		scaled = decimal_value(column, value, relation);

	/* DuckDB's physical type for DECIMAL(width, _). */
	if (column->width <= 4)
		((int16 *) column->data)[row] = (int16) scaled;
	else if (column->width <= 9)
		((int32 *) column->data)[row] = (int32) scaled;
	else if (column->width <= 18)
		((int64 *) column->data)[row] = (int64) scaled;
	else
	{
		/* duckdb_hugeint: the low 64 bits, then the high 64 bits. */
		uint64	   *out = (uint64 *) (column->data + 16 * row);

		out[0] = (uint64) scaled;
		out[1] = (uint64) (scaled >> 64);
	}
}

/* Days between 2000-01-01 (Postgres's epoch) and 1970-01-01 (DuckDB's), and microseconds. */
#define EPOCH_DAYS ((POSTGRES_EPOCH_JDATE) - (UNIX_EPOCH_JDATE))
#define EPOCH_MICROS ((int64) EPOCH_DAYS * USECS_PER_DAY)

pg_noreturn static void
timestamp_out_of_range(const LlmSqlColumn *column, const char *relation)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("a value of column \"%s\" of %s is beyond DuckDB's timestamp range",
					column->name, relation)));
}

/* Frees a detoasted copy at once: a batch of large values would otherwise pile up. */
static void
free_copy(struct varlena *detoasted, Datum original)
{
	if ((Pointer) detoasted != DatumGetPointer(original))
		pfree(detoasted);
}

static void
put_value(LlmSqlColumn *column, int row, Datum value, const char *relation)
{
	switch (column->kind)
	{
		case LLM_SQL_KIND_BOOL:
			((uint8 *) column->data)[row] = DatumGetBool(value) ? 1 : 0;
			break;
		case LLM_SQL_KIND_INT2:
			((int16 *) column->data)[row] = DatumGetInt16(value);
			break;
		case LLM_SQL_KIND_INT4:
			((int32 *) column->data)[row] = DatumGetInt32(value);
			break;
		case LLM_SQL_KIND_INT8:
			((int64 *) column->data)[row] = DatumGetInt64(value);
			break;
		case LLM_SQL_KIND_OID:
			((int64 *) column->data)[row] = (int64) DatumGetObjectId(value);
			break;
		case LLM_SQL_KIND_FLOAT4:
			((float4 *) column->data)[row] = DatumGetFloat4(value);
			break;
		case LLM_SQL_KIND_FLOAT8:
			((float8 *) column->data)[row] = DatumGetFloat8(value);
			break;
		case LLM_SQL_KIND_DATE:
			{
				DateADT		date = DatumGetDateADT(value);

				/* DuckDB's infinities are ±INT32_MAX. */
				if (DATE_IS_NOBEGIN(date))
					((int32 *) column->data)[row] = -PG_INT32_MAX;
				else if (DATE_IS_NOEND(date))
					((int32 *) column->data)[row] = PG_INT32_MAX;
				else
					((int32 *) column->data)[row] = date + EPOCH_DAYS;
				break;
			}
		case LLM_SQL_KIND_TIMESTAMP:
			{
				int64		micros = DatumGetInt64(value);
				int64		out;

				if (TIMESTAMP_IS_NOBEGIN(micros))
					out = -PG_INT64_MAX;
				else if (TIMESTAMP_IS_NOEND(micros))
					out = PG_INT64_MAX;
				else if (__builtin_add_overflow(micros, EPOCH_MICROS, &out) ||
						 out == PG_INT64_MAX || out == -PG_INT64_MAX)
					timestamp_out_of_range(column, relation);
				((int64 *) column->data)[row] = out;
				break;
			}
		case LLM_SQL_KIND_DECIMAL:
			put_decimal(column, row, DatumGetNumeric(value), relation);
			break;
		case LLM_SQL_KIND_NUMERIC_DOUBLE:
			((float8 *) column->data)[row] =
				DatumGetFloat8(DirectFunctionCall1(numeric_float8, value));
			break;
		case LLM_SQL_KIND_UUID:
			{
				const unsigned char *bytes = DatumGetUUIDP(value)->data;
				uint64		high = 0,
							low = 0;
				uint64	   *out = (uint64 *) (column->data + 16 * row);

				for (int i = 0; i < 8; i++)
				{
					high = (high << 8) | bytes[i];
					low = (low << 8) | bytes[8 + i];
				}
				out[0] = low;
				out[1] = high ^ (UINT64CONST(1) << 63);
				break;
			}
		case LLM_SQL_KIND_TEXT:
			{
				struct varlena *text = PG_DETOAST_DATUM_PACKED(value);

				append_text(column, VARDATA_ANY(text), VARSIZE_ANY_EXHDR(text));
				free_copy(text, value);
				break;
			}
		case LLM_SQL_KIND_BPCHAR:
			{
				struct varlena *text = PG_DETOAST_DATUM_PACKED(value);
				const char *start = VARDATA_ANY(text);
				Size		len = VARSIZE_ANY_EXHDR(text);

				while (len > 0 && start[len - 1] == ' ')
					len--;
				append_text(column, start, len);
				free_copy(text, value);
				break;
			}
		case LLM_SQL_KIND_NAME:
			{
				const char *name = NameStr(*DatumGetName(value));

				append_text(column, name, strnlen(name, NAMEDATALEN));
				break;
			}
		case LLM_SQL_KIND_BYTEA:
			{
				struct varlena *bytes = PG_DETOAST_DATUM_PACKED(value);

				append_bytes(column, VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
				free_copy(bytes, value);
				break;
			}
		case LLM_SQL_KIND_JSONB:
			{
				Jsonb	   *json = DatumGetJsonbP(value);
				char	   *text = JsonbToCString(NULL, &json->root, VARSIZE(json));

				append_text(column, text, strlen(text));
				pfree(text);
				free_copy((struct varlena *) json, value);
				break;
			}
		default:
			elog(ERROR, "llm_sql: unknown column kind %d", column->kind);
	}
}

static bool
is_text_kind(int kind)
{
	return kind >= LLM_SQL_KIND_TEXT && kind != LLM_SQL_KIND_BLOCK;
}

void
start_batch(Reader *reader, LlmSqlColumn *columns, int32 count)
{
	MemoryContextReset(reader->batch);
	for (int c = 0; c < count; c++)
	{
		columns[c].bytes = NULL;
		columns[c].bytes_len = 0;
		columns[c].bytes_cap = 0;
		if (is_text_kind(columns[c].kind))
			columns[c].offsets[0] = 0;
	}
}

/* Converts one row (`values`/`isnull` indexed by each column's `source`) into row `row`. */
void
put_row(LlmSqlColumn *columns, int32 count, int row, const Datum *values, const bool *isnull,
		const char *relation)
{
	for (int c = 0; c < count; c++)
	{
		LlmSqlColumn *column = &columns[c];
		bool		null;

		if (column->kind == LLM_SQL_KIND_BLOCK)
			continue;			/* the copy builder writes it */
		null = isnull[column->source];

		column->nulls[row] = null;
		if (!null)
			put_value(column, row, values[column->source], relation);
		if (is_text_kind(column->kind))
		{
			if (column->bytes_len > PG_UINT32_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("values of column \"%s\" are too large to read in one batch",
								column->name)));
			column->offsets[row + 1] = (uint32) column->bytes_len;
		}
	}
}

/* The next visible tuple of a heap reader into its slot: false at the end. */
static bool
next_tuple(Reader *reader)
{
	if (reader->nranges < 0)
		return table_scan_getnextslot(reader->scan, ForwardScanDirection, reader->slot);
	while (reader->range < reader->nranges)
	{
		if (table_scan_getnextslot_tidrange(reader->scan, ForwardScanDirection, reader->slot))
			return true;
		if (++reader->range < reader->nranges)
			set_block_range(reader, false);
	}
	return false;
}

/* Reads up to `capacity` rows of a heap reader into `columns`; 0 at the end of the table. */
int32
llm_sql_heap_fill(int32 id, LlmSqlColumn *columns, int32 count, int32 capacity,
				  const char *relation)
{
	Reader	   *reader = find_reader(id);
	ResourceOwner caller = CurrentResourceOwner;
	MemoryContext old;
	volatile int rows = 0;

	CHECK_FOR_INTERRUPTS();
	start_batch(reader, columns, count);
	old = MemoryContextSwitchTo(reader->batch);
	/* Buffer pins go to the owner the scan started under. */
	CurrentResourceOwner = reader->owner;
	PG_TRY();
	{
		while (rows < capacity && next_tuple(reader))
		{
			slot_getsomeattrs(reader->slot, reader->last_attno);
			put_row(columns, count, rows, reader->slot->tts_values, reader->slot->tts_isnull,
					relation);
			rows++;
		}
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = caller;
		MemoryContextSwitchTo(old);
	}
	PG_END_TRY();
	return rows;
}

/* Converts the first `rows` tuples of `table` into `columns`, in the reader's batch context. */
static void
convert_tuples(Reader *reader, SPITupleTable *table, int rows, LlmSqlColumn *columns,
			   int32 count, const char *relation)
{
	MemoryContext old = MemoryContextSwitchTo(reader->batch);

	PG_TRY();
	{
		Datum	   *values = palloc(sizeof(Datum) * Max(table->tupdesc->natts, 1));
		bool	   *isnull = palloc(sizeof(bool) * Max(table->tupdesc->natts, 1));

		for (int row = 0; row < rows; row++)
		{
			heap_deform_tuple(table->vals[row], table->tupdesc, values, isnull);
			put_row(columns, count, row, values, isnull, relation);
		}
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(old);
	}
	PG_END_TRY();
}

/*
 * Fetches up to `capacity` rows from `portal` (an open SPI cursor; SPI is connected) and
 * converts them into `columns`; 0 at the end.
 */
int32
llm_sql_cursor_fill(int32 id, Portal portal, LlmSqlColumn *columns, int32 count,
					int32 capacity, const char *relation)
{
	Reader	   *reader = find_reader(id);
	SPITupleTable *table;
	int			rows;

	CHECK_FOR_INTERRUPTS();
	start_batch(reader, columns, count);
	SPI_cursor_fetch(portal, true, capacity);
	table = SPI_tuptable;
	rows = (int) Min(SPI_processed, (uint64) capacity);
	convert_tuples(reader, table, rows, columns, count, relation);
	SPI_freetuptable(table);
	return rows;
}
