/*
 * The columnar copy of a table (src/local/copy.rs): who may use one, building it, and deciding
 * for a statement which of its pages still hold exactly what that statement would read.
 *
 * Only all-visible pages are copied. Postgres itself reads such a page without looking at its
 * tuples' visibility (heapam.c's page-at-a-time mode), and any insert, update or delete of the
 * page clears its visibility-map bit, under the page's lock, before the change can commit. So
 * a copied page is exact for any snapshot as long as the page has not changed since it was
 * copied, which two LSNs tell:
 * - setting a visibility-map bit stamps the map page with the LSN of a new WAL record; a page
 *   whose bit is set now, under a map page whose LSN is the one recorded before the page was
 *   copied, cannot have been changed and marked all-visible again;
 * - otherwise, every WAL-logged change of the heap page moves its own LSN: a page still
 *   all-visible with the LSN recorded when it was copied is unchanged.
 * Both need WAL: unlogged and temporary tables (and catalogs, which are updated in place) are
 * never copied. Pages that fail the check are read live with the statement's snapshot.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/visibilitymap.h"
#include "access/xlog.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/predicate.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pg_columns.h"

/* Heap blocks per visibility-map page: two bits each (visibilitymap.c's HEAPBLOCKS_PER_PAGE). */
#define VM_HEAPBLOCKS_PER_PAGE ((BLCKSZ - MAXALIGN(SizeOfPageHeaderData)) * 4)

typedef struct CopyBuild
{
	BlockNumber nblocks;		/* the table's blocks when the build started */
	BlockNumber next;			/* the next block to look at */
	uint64	   *page_lsns;		/* per block: its LSN when copied; 0 when not copied */
	uint64	   *vm_lsns;		/* per map page: its LSN before any of its blocks was read */
	bool	   *vm_seen;
	uint32		nvm;
	Buffer		vmbuffer;
	BufferAccessStrategy strategy;
	Datum	   *values;
	bool	   *isnull;
	char	   *page;			/* a private copy of the page being converted */
	HeapTupleData tuples[MaxHeapTuplesPerPage];
} CopyBuild;

static uint32
map_pages(BlockNumber nblocks)
{
	return (nblocks + VM_HEAPBLOCKS_PER_PAGE - 1) / VM_HEAPBLOCKS_PER_PAGE;
}

/*
 * Whether a copy may stand for `relation` for the current role: a logged plain table or
 * materialized view, not a catalog, on a primary, and a role with SELECT on the whole table to
 * whom row-level security does not apply.
 */
static bool
copy_allowed(Relation relation)
{
	Oid			relid = RelationGetRelid(relation);

	return (relation->rd_rel->relkind == RELKIND_RELATION ||
			relation->rd_rel->relkind == RELKIND_MATVIEW) &&
		RelationIsPopulated(relation) &&
		RelationNeedsWAL(relation) &&
		!IsCatalogRelation(relation) &&
		!RecoveryInProgress() &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED;
}

/*
 * 1 when the current role may read `relid` from a copy (the relation stays locked until the
 * transaction ends, so that its file cannot change under the statement); sets the relation's
 * file number, which any rewrite (TRUNCATE, VACUUM FULL, CLUSTER, ALTER TYPE) changes.
 */
int32
llm_sql_copy_status(Oid relid, uint32 *relfilenumber)
{
	Relation	relation = try_table_open(relid, AccessShareLock);
	bool		allowed;

	if (relation == NULL)
		return 0;
	allowed = copy_allowed(relation);
	/*
	 * Without its own reads, a statement reading only the copy still asks the executor, and
	 * takes the predicate lock a sequential scan takes (SERIALIZABLE's conflict detection).
	 */
	if (allowed && ActiveSnapshotSet())
	{
		check_select_permission(relation, NULL, 0);
		PredicateLockRelation(relation, GetActiveSnapshot());
	}
	else
		allowed = false;
	*relfilenumber = relation->rd_locator.relNumber;
	table_close(relation, NoLock);
	return allowed ? 1 : 0;
}

/*
 * Like llm_sql_copy_status for a copy the statement does not read, without locking the
 * relation: 1 when it still exists with file number `relfilenumber` (0: any) and the current
 * role may still read all of it without row-level security.
 */
int32
llm_sql_copy_still_allowed(Oid relid, uint32 relfilenumber)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		same;

	if (!HeapTupleIsValid(tuple))
		return 0;
	same = relfilenumber == 0 ||
		((Form_pg_class) GETSTRUCT(tuple))->relfilenode == relfilenumber;
	ReleaseSysCache(tuple);
	return same &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED ? 1 : 0;
}

/* The LSN of the map page holding `block`'s bits (pinned into `vmbuffer`); 0 if none. */
static uint64
map_page_lsn(Relation relation, BlockNumber block, Buffer *vmbuffer)
{
	uint64		lsn;

	visibilitymap_get_status(relation, block, vmbuffer);
	if (!BufferIsValid(*vmbuffer))
		return 0;
	LockBuffer(*vmbuffer, BUFFER_LOCK_SHARE);
	lsn = PageGetLSN(BufferGetPage(*vmbuffer));
	LockBuffer(*vmbuffer, BUFFER_LOCK_UNLOCK);
	return lsn;
}

/*
 * Starts building the copy of `relid`'s attributes `attnums` (checked as a heap read is); 0
 * when the current role may not use a copy of it.
 */
int32
llm_sql_copy_begin(Oid relid, const int16 *attnums, const Oid *types, const int32 *typmods,
				   int32 count)
{
	Relation	relation;
	MemoryContext old;
	Reader	   *reader;
	CopyBuild  *build;
	int			last = 0;

	relation = open_for_heap_read(relid, attnums, types, typmods, count, &last);
	if (relation == NULL)
		return 0;
	if (!copy_allowed(relation))
	{
		table_close(relation, NoLock);
		return 0;
	}
	reader = new_reader();
	old = MemoryContextSwitchTo(reader->context);
	reader->relation = relation;
	reader->owner = CurrentResourceOwner;
	reader->nranges = -1;
	build = palloc0(sizeof(CopyBuild));
	build->nblocks = RelationGetNumberOfBlocks(relation);
	build->nvm = map_pages(build->nblocks);
	build->page_lsns = palloc0(sizeof(uint64) * Max(build->nblocks, 1));
	build->vm_lsns = palloc0(sizeof(uint64) * Max(build->nvm, 1));
	build->vm_seen = palloc0(sizeof(bool) * Max(build->nvm, 1));
	build->vmbuffer = InvalidBuffer;
	build->strategy = GetAccessStrategy(BAS_BULKREAD);
	build->values = palloc(sizeof(Datum) * Max(RelationGetDescr(relation)->natts, 1));
	build->isnull = palloc(sizeof(bool) * Max(RelationGetDescr(relation)->natts, 1));
	build->page = palloc(BLCKSZ);
	reader->build = build;
	MemoryContextSwitchTo(old);
	return reader->id;
}

/*
 * Copies `block` into the build's private page if it is all-visible, recording its LSN, and
 * points the build's tuples at its line pointers: how many there are (0 when not copied).
 */
static int
copy_page(Reader *reader, BlockNumber block)
{
	CopyBuild  *build = reader->build;
	Relation	relation = reader->relation;
	uint32		map_page = block / VM_HEAPBLOCKS_PER_PAGE;
	Buffer		buffer;
	Page		page;
	uint64		lsn = 0;
	int			n = 0;

	/* Recorded before any of the map page's blocks is read (see the top of this file). */
	if (!build->vm_seen[map_page])
	{
		build->vm_lsns[map_page] = map_page_lsn(relation, block, &build->vmbuffer);
		build->vm_seen[map_page] = true;
	}
	if (!VM_ALL_VISIBLE(relation, block, &build->vmbuffer))
		return 0;
	buffer = ReadBufferExtended(relation, MAIN_FORKNUM, block, RBM_NORMAL, build->strategy);
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buffer);
	if (PageIsAllVisible(page))
	{
		lsn = PageGetLSN(page);
		memcpy(build->page, page, BLCKSZ);
	}
	UnlockReleaseBuffer(buffer);
	if (lsn == 0)
		return 0;
	build->page_lsns[block] = lsn;

	page = (Page) build->page;
	for (OffsetNumber offset = FirstOffsetNumber; offset <= PageGetMaxOffsetNumber(page); offset++)
	{
		ItemId		item = PageGetItemId(page, offset);
		HeapTuple	tuple = &build->tuples[n];

		if (!ItemIdIsNormal(item))
			continue;
		tuple->t_len = ItemIdGetLength(item);
		tuple->t_data = (HeapTupleHeader) PageGetItem(page, item);
		tuple->t_tableOid = RelationGetRelid(relation);
		ItemPointerSet(&tuple->t_self, block, offset);
		n++;
	}
	return n;
}

/*
 * Converts the rows of the next all-visible pages into `columns` (a LLM_SQL_KIND_BLOCK column
 * gets each row's block number), up to `capacity` rows; 0 when every block has been seen.
 */
int32
llm_sql_copy_fill(int32 id, LlmSqlColumn *columns, int32 count, int32 capacity,
				  const char *relation_name)
{
	Reader	   *reader = find_reader(id);
	CopyBuild  *build = reader->build;
	ResourceOwner caller = CurrentResourceOwner;
	MemoryContext old;
	volatile int rows = 0;

	if (build == NULL)
		elog(ERROR, "llm_sql: local scan %d is not building a copy", id);
	start_batch(reader, columns, count);
	old = MemoryContextSwitchTo(reader->batch);
	CurrentResourceOwner = reader->owner;
	PG_TRY();
	{
		while (rows + MaxHeapTuplesPerPage <= capacity && build->next < build->nblocks)
		{
			BlockNumber block = build->next++;
			int			tuples;

			CHECK_FOR_INTERRUPTS();
			tuples = copy_page(reader, block);
			for (int t = 0; t < tuples; t++)
			{
				heap_deform_tuple(&build->tuples[t], RelationGetDescr(reader->relation),
								  build->values, build->isnull);
				put_row(columns, count, rows, build->values, build->isnull, relation_name);
				for (int c = 0; c < count; c++)
					if (columns[c].kind == LLM_SQL_KIND_BLOCK)
					{
						((int64 *) columns[c].data)[rows] = block;
						columns[c].nulls[rows] = 0;
					}
				rows++;
			}
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

/* The size of a finished build: its blocks and map pages. */
void
llm_sql_copy_size(int32 id, uint32 *nblocks, uint32 *nvm)
{
	CopyBuild  *build = find_reader(id)->build;

	*nblocks = build == NULL ? 0 : build->nblocks;
	*nvm = build == NULL ? 0 : build->nvm;
}

/* The LSNs a finished build recorded (arrays of llm_sql_copy_size's sizes). */
void
llm_sql_copy_lsns(int32 id, uint64 *page_lsns, uint64 *vm_lsns)
{
	CopyBuild  *build = find_reader(id)->build;

	if (build == NULL)
		return;
	memcpy(page_lsns, build->page_lsns, sizeof(uint64) * build->nblocks);
	memcpy(vm_lsns, build->vm_lsns, sizeof(uint64) * build->nvm);
}

void
copy_build_end(Reader *reader)
{
	if (BufferIsValid(reader->build->vmbuffer))
		ReleaseBuffer(reader->build->vmbuffer);
	FreeAccessStrategy(reader->build->strategy);
	reader->build = NULL;
}

/*
 * For a statement about to read `relid` (after llm_sql_copy_status, under its lock): sets
 * usable[b], for each of the copy's `nblocks` blocks, to 1 when its copied rows are exactly
 * what the statement would read, 2 when it was not copied, or changed since, but is
 * all-visible now (a new build would copy it), 0 otherwise. Sets `current` to the relation's
 * blocks now and `appended_visible` to how many of the blocks added since the copy are
 * all-visible (a new build would copy those too; not the others, which hold rows too recent
 * for every snapshot). Returns the number of usable blocks.
 */
int32
llm_sql_copy_check(Oid relid, const uint64 *page_lsns, uint32 nblocks, const uint64 *vm_lsns,
				   uint32 nvm, uint8 *usable, uint32 *current, uint32 *appended_visible)
{
	Relation	relation = table_open(relid, AccessShareLock);
	BlockNumber blocks_now = RelationGetNumberOfBlocks(relation);
	BufferAccessStrategy strategy = NULL;
	Buffer		vmbuffer = InvalidBuffer;
	int32		found = 0;

	*current = blocks_now;
	memset(usable, 0, nblocks);
	for (uint32 map_page = 0; map_page < nvm; map_page++)
	{
		BlockNumber first = map_page * VM_HEAPBLOCKS_PER_PAGE;
		BlockNumber end = Min(Min(first + VM_HEAPBLOCKS_PER_PAGE, nblocks), blocks_now);
		bool		unchanged;

		CHECK_FOR_INTERRUPTS();
		if (first >= end)
			break;
		visibilitymap_get_status(relation, first, &vmbuffer);
		if (!BufferIsValid(vmbuffer))
			continue;
		/* The bits and the LSN together: setting a bit holds this lock exclusively. */
		LockBuffer(vmbuffer, BUFFER_LOCK_SHARE);
		unchanged = PageGetLSN(BufferGetPage(vmbuffer)) == vm_lsns[map_page];
		for (BlockNumber block = first; block < end; block++)
		{
			bool		visible = VM_ALL_VISIBLE(relation, block, &vmbuffer);

			usable[block] = !visible ? 0 : page_lsns[block] != 0 ? 1 : 2;
		}
		LockBuffer(vmbuffer, BUFFER_LOCK_UNLOCK);
		for (BlockNumber block = first; block < end; block++)
		{
			Buffer		buffer;
			Page		page;

			if (usable[block] != 1)
				continue;
			if (unchanged)
			{
				found++;
				continue;
			}
			/* Something under this map page was marked all-visible: check the page's own LSN. */
			CHECK_FOR_INTERRUPTS();
			if (strategy == NULL)
				strategy = GetAccessStrategy(BAS_BULKREAD);
			buffer = ReadBufferExtended(relation, MAIN_FORKNUM, block, RBM_NORMAL, strategy);
			LockBuffer(buffer, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buffer);
			/* Changed since the copy, but all-visible again: a new build would copy it. */
			if (!PageIsAllVisible(page))
				usable[block] = 0;
			else
				usable[block] = PageGetLSN(page) == page_lsns[block] ? 1 : 2;
			UnlockReleaseBuffer(buffer);
			found += usable[block] == 1;
		}
	}
	*appended_visible = 0;
	for (BlockNumber block = nblocks; block < blocks_now; block++)
	{
		if (block % VM_HEAPBLOCKS_PER_PAGE == 0)
			CHECK_FOR_INTERRUPTS();
		*appended_visible += VM_ALL_VISIBLE(relation, block, &vmbuffer);
	}
	if (BufferIsValid(vmbuffer))
		ReleaseBuffer(vmbuffer);
	if (strategy != NULL)
		FreeAccessStrategy(strategy);
	table_close(relation, NoLock);
	return found;
}
