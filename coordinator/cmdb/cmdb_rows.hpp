// What the files of coordinator/cmdb/ share to read their rows
// (upgrade_records.cpp, outbox.cpp). Internal to coordinator/cmdb/.
#pragma once

#include <soci/soci.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  Row row;
  soci::statement st(sql);
  row.Into(st);
  bind(st);
  st.alloc();
  st.prepare(sql_text);
  st.define_and_bind();
  st.execute(false);
  std::vector<decltype(row.Value())> out;
  while (st.fetch()) out.push_back(row.Value());
  return out;
}

}  // namespace fabu::coordinator::cmdb_detail
