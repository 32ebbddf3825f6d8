//! C symbols that earlier versions' SQL objects name, kept so that a database still on an
//! earlier version can load this library (CREATE FUNCTION, and so a dump's restore, checks that
//! the symbol exists) until `ALTER EXTENSION llm_sql UPDATE` replaces those objects. Each only
//! says so.

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

use crate::error::Error;

macro_rules! retired {
    ($($symbol:ident, $finfo:ident;)*) => {
        $(
            #[pgrx::pg_guard]
            #[unsafe(no_mangle)]
            pub unsafe extern "C-unwind" fn $symbol(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
                outdated()
            }
            finfo_v1!($finfo);
        )*
    };
}

fn outdated() -> ! {
    Error::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "this function belongs to an earlier llm_sql, whose library was replaced by a newer one",
    )
    .with_hint("Run ALTER EXTENSION llm_sql UPDATE in this database.")
    .report()
}

retired! {
    embed_column_start_wrapper, pg_finfo_embed_column_start_wrapper;
    embed_column_batch_wrapper, pg_finfo_embed_column_batch_wrapper;
    embed_column_finish_wrapper, pg_finfo_embed_column_finish_wrapper;
    embed_column_failed_wrapper, pg_finfo_embed_column_failed_wrapper;
    auto_embed_wrapper, pg_finfo_auto_embed_wrapper;
    disable_auto_embed_wrapper, pg_finfo_disable_auto_embed_wrapper;
    process_embedding_queue_batch_wrapper, pg_finfo_process_embedding_queue_batch_wrapper;
    semantic_search_wrapper, pg_finfo_semantic_search_wrapper;
    hybrid_search_wrapper, pg_finfo_hybrid_search_wrapper;
    attach_internal_wrapper, pg_finfo_attach_internal_wrapper;
    attachments_internal_wrapper, pg_finfo_attachments_internal_wrapper;
    grant_attachment_internal_wrapper, pg_finfo_grant_attachment_internal_wrapper;
    revoke_attachment_internal_wrapper, pg_finfo_revoke_attachment_internal_wrapper;
    models_internal_wrapper, pg_finfo_models_internal_wrapper;
    // 0.2.0: the searches without filter and columns.
    semantic_search_rows_wrapper, pg_finfo_semantic_search_rows_wrapper;
    hybrid_search_rows_wrapper, pg_finfo_hybrid_search_rows_wrapper;
    // 0.4.0: local_copies without its column stored.
    list_local_copies_wrapper, pg_finfo_list_local_copies_wrapper;
}
