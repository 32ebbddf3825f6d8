/*
 * What pg_columns.c (row readers and value conversion) shares with pg_copy.c (the columnar
 * copy of a table): the column buffers Rust hands in, the reader state, and the helpers.
 */
#ifndef LLM_SQL_PG_COLUMNS_H
#define LLM_SQL_PG_COLUMNS_H

#include "postgres.h"

#include "access/tableam.h"
#include "storage/block.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapshot.h"

/* Column kinds: keep in step with `Kind` in src/local/pg_scan.rs. */
enum
{
	LLM_SQL_KIND_BOOL = 1,
	LLM_SQL_KIND_INT2,
	LLM_SQL_KIND_INT4,
	LLM_SQL_KIND_INT8,
	LLM_SQL_KIND_OID,			/* to BIGINT */
	LLM_SQL_KIND_FLOAT4,
	LLM_SQL_KIND_FLOAT8,
	LLM_SQL_KIND_DATE,			/* to DuckDB DATE: days since 1970 */
	LLM_SQL_KIND_TIMESTAMP,		/* timestamp and timestamptz: microseconds since 1970 */
	LLM_SQL_KIND_DECIMAL,		/* numeric to DECIMAL(width, scale), exactly or an ERROR */
	LLM_SQL_KIND_NUMERIC_DOUBLE,	/* numeric to DOUBLE, as Postgres's own cast rounds it */
	LLM_SQL_KIND_UUID,			/* to DuckDB UUID (a hugeint with its top bit flipped) */
	LLM_SQL_KIND_TEXT,			/* any varlena text (text, varchar, json, ::text) */
	LLM_SQL_KIND_BPCHAR,		/* character(n): trailing blanks dropped, as ::text does */
	LLM_SQL_KIND_NAME,
	LLM_SQL_KIND_BYTEA,			/* to BLOB */
	LLM_SQL_KIND_JSONB,			/* as text, jsonb's output */
	LLM_SQL_KIND_BLOCK,			/* no value: the heap block a copied row came from (INTEGER) */
};

/* One column of a batch; shared with Rust (`CColumn`), which owns data, nulls and offsets. */
typedef struct LlmSqlColumn
{
	int32		source;			/* 0-based index into the row's values */
	int32		kind;
	int32		width;			/* DECIMAL: precision */
	int32		scale;			/* DECIMAL: scale */
	const char *name;			/* for error messages */
	char	   *data;			/* fixed-width kinds: room for `capacity` values */
	uint8	   *nulls;			/* room for `capacity` flags, 1 = NULL */
	uint32	   *offsets;		/* text kinds: room for `capacity` + 1 offsets */
	/* text kinds: the bytes, palloc'd in the batch context (read by Rust after the call) */
	char	   *bytes;
	uint64		bytes_len;
	uint64		bytes_cap;
} LlmSqlColumn;

/* One open scan, known to Rust only by its number. */
typedef struct Reader
{
	int32		id;
	SubTransactionId subxact;	/* forgotten when this subtransaction aborts */
	MemoryContext context;		/* the reader and its scan live here */
	MemoryContext batch;		/* reset per batch: detoasted values, text bytes */
	Relation	relation;		/* heap readers only */
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	ResourceOwner owner;		/* holds the snapshot and the scan's buffer pins */
	int			last_attno;		/* deform up to here */
	/* Heap readers of some blocks only (the live part of a copied table): a TID range scan. */
	int32		nranges;		/* -1: every block */
	int32		range;			/* the range being read */
	BlockNumber *range_starts;
	BlockNumber *range_ends;	/* exclusive */
	/* Copy builders (pg_copy.c). */
	struct CopyBuild *build;
} Reader;

extern Reader *new_reader(void);
extern Reader *find_reader(int32 id);
extern void start_batch(Reader *reader, LlmSqlColumn *columns, int32 count);
extern void put_row(LlmSqlColumn *columns, int32 count, int row, const Datum *values,
					const bool *isnull, const char *relation);
extern void check_select_permission(Relation relation, const int16 *attnums, int32 count);
extern Relation open_for_heap_read(Oid relid, const int16 *attnums, const Oid *types,
								   const int32 *typmods, int32 count, int *last_attno);

/* pg_copy.c: releases a copy builder's buffers (called while its reader ends). */
extern void copy_build_end(Reader *reader);

#endif							/* LLM_SQL_PG_COLUMNS_H */
