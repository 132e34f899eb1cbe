// What the files of coordinator/cmdb/ share to read their rows
// (upgrade_records.cpp, outbox.cpp). Internal to coordinator/cmdb/.
#pragma once

#include <soci/soci.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/store/row_query.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator::cmdb_detail {

// A time as RFC 3339, or null when not set (0).
inline nlohmann::json TimeOrNull(protocol::UnixSeconds at) {
  return at > 0 ? nlohmann::json(protocol::FormatRfc3339Utc(at)) : nlohmann::json(nullptr);
}

// Runs `sql_text` with `bind` adding named uses; collects the Value() of
// each row of type Row (which binds its columns in Into).
template <typename Row, typename Bind>
auto Query(soci::session& sql, const std::string& sql_text, Bind bind) {
  return QueryRows<Row>(sql, sql_text, bind, [](const Row& row) { return row.Value(); });
}

}  // namespace fabu::coordinator::cmdb_detail
