// One way to read rows through SOCI: a Row type binds its columns (Into),
// and each fetched row is turned into a value. Used by the modules that keep
// their own row types (deploy/deployment_rows.hpp, cmdb/cmdb_rows.hpp).
#pragma once

#include <soci/soci.h>

#include <string>
#include <type_traits>
#include <vector>

namespace fabu::coordinator {

// Runs `sql_text` with `bind(statement)` adding the named uses, and
// collects `value(row)` for every row fetched.
template <typename Row, typename Bind, typename Value>
auto QueryRows(soci::session& sql, const std::string& sql_text, Bind bind, Value value) {
  Row row;
  soci::statement st(sql);
  row.Into(st);
  bind(st);
  st.alloc();
  st.prepare(sql_text);
  st.define_and_bind();
  st.execute(false);
  std::vector<std::decay_t<std::invoke_result_t<Value&, const Row&>>> out;
  while (st.fetch()) out.push_back(value(row));
  return out;
}

}  // namespace fabu::coordinator
