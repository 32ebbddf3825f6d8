// The two things llm_sql needs from DuckDB that its C API does not offer, written against the
// C++ API of the same libduckdb.so (1.5.5, headers of that release; see build.rs):
//
// * the type of each statement DuckDB's parser extracted, before anything binds it (binding
//   already runs code: a scanner's bind connects to its server);
// * withdrawing a function from an instance's system catalog: it is replaced by one of the same
//   name whose binding fails, so no statement form reaches it (query, view, macro, CREATE TABLE
//   AS, query('…'), a qualified system.main.name, …). DuckDB itself then enforces the rule, like
//   it enforces disabled_filesystems.
//
// Nothing here calls Postgres, and no C++ exception leaves these functions.

#include "duckdb.h"
#include "duckdb/catalog/catalog.hpp"
#include "duckdb/common/exception.hpp"
#include "duckdb/main/capi/capi_internal.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/main/connection.hpp"
#include "duckdb/parser/parsed_data/create_scalar_function_info.hpp"
#include "duckdb/parser/parsed_data/create_table_function_info.hpp"

#include <cstring>
#include <string>

namespace {

using namespace duckdb;

std::string withdrawn_message(const std::string &name) {
	return "DuckDB function " + name +
	       " is not available to this role through llm_sql: it reaches files, servers or SQL text "
	       "around llm_sql's rules; only superusers may call it";
}

unique_ptr<FunctionData> refuse_table(ClientContext &, TableFunctionBindInput &input, vector<LogicalType> &,
                                      vector<string> &) {
	throw PermissionException(withdrawn_message(input.table_function.name));
}

unique_ptr<FunctionData> refuse_scalar(ClientContext &, ScalarFunction &function,
                                       vector<unique_ptr<Expression>> &) {
	throw PermissionException(withdrawn_message(function.name));
}

// Binding refuses first; these only keep DuckDB's checks of a function's shape satisfied where
// it binds a call late (a macro's parameters).
void never_runs(DataChunk &, ExpressionState &, Vector &) {
	throw PermissionException("a withdrawn DuckDB function cannot run");
}

void never_scans(ClientContext &, TableFunctionInput &, DataChunk &) {
	throw PermissionException("a withdrawn DuckDB function cannot run");
}

char *copy_message(const std::string &message) {
	auto copy = static_cast<char *>(duckdb_malloc(message.size() + 1));
	if (copy) {
		std::memcpy(copy, message.c_str(), message.size() + 1);
	}
	return copy;
}

} // namespace

extern "C" {

// The type of statement `index` of `statements` (from duckdb_extract_statements), as
// duckdb_prepared_statement_type would report it after binding; INVALID when out of range.
duckdb_statement_type llm_sql_extracted_statement_type(duckdb_extracted_statements statements, idx_t index) {
	try {
		auto wrapper = reinterpret_cast<duckdb::ExtractStatementsWrapper *>(statements);
		if (!wrapper || index >= wrapper->statements.size()) {
			return DUCKDB_STATEMENT_TYPE_INVALID;
		}
		return duckdb::StatementTypeToC(wrapper->statements[index]->type);
	} catch (...) {
		return DUCKDB_STATEMENT_TYPE_INVALID;
	}
}

// Replaces `name` in the system catalog of `connection`'s database by a function that only
// refuses: `table` selects a table function, otherwise a scalar function. Any argument list
// matches the replacement, so every call reaches the refusal. Returns NULL, or an error message
// that the caller frees with duckdb_free.
char *llm_sql_withdraw_function(duckdb_connection connection, const char *name, bool table) {
	try {
		auto &context = *reinterpret_cast<duckdb::Connection *>(connection)->context;
		std::string function_name(name);
		context.RunFunctionInTransaction([&]() {
			auto &catalog = duckdb::Catalog::GetSystemCatalog(context);
			if (table) {
				duckdb::TableFunction stub(function_name, {}, never_scans, refuse_table);
				stub.varargs = duckdb::LogicalType::ANY;
				duckdb::CreateTableFunctionInfo info(stub);
				info.on_conflict = duckdb::OnCreateConflict::REPLACE_ON_CONFLICT;
				info.internal = true;
				catalog.CreateTableFunction(context, info);
			} else {
				duckdb::ScalarFunction stub(function_name, {}, duckdb::LogicalType::VARCHAR, never_runs,
				                            refuse_scalar, nullptr, nullptr, nullptr,
				                            duckdb::LogicalType::ANY);
				duckdb::CreateScalarFunctionInfo info(stub);
				info.on_conflict = duckdb::OnCreateConflict::REPLACE_ON_CONFLICT;
				info.internal = true;
				catalog.CreateFunction(context, info);
			}
		});
		return nullptr;
	} catch (std::exception &e) {
		return copy_message(std::string("could not withdraw DuckDB function ") + name + ": " + e.what());
	} catch (...) {
		return copy_message(std::string("could not withdraw DuckDB function ") + name);
	}
}

} // extern "C"
