// Statements run once, and one way to read rows through SOCI.
//
// SOCI prepares a statement made by `sql.prepare << ...` to be run again:
// on PostgreSQL that is a PREPARE, then the execution, then a DEALLOCATE
// when the statement is destroyed, three round trips to the server for a
// statement used once. OneShot sends the text with its parameters in one
// (libpq's PQexecParams); SQLite prepares either kind alike. A statement run
// many times (a loop's, or a cached one: store.hpp StatementCache) is
// prepared as before.
#pragma once

#include <soci/soci.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fabu::coordinator {

// `sql_text` with its into and use elements (soci::into, soci::use, or a
// function of the statement that adds some: a row type's), ready to execute
// once: `st.execute(true)` for one row, or `st.execute(false)` then
// `st.fetch()` for each.
template <typename... Elements>
soci::statement OneShot(soci::session& sql, const std::string& sql_text, Elements&&... elements) {
  soci::statement st(sql);
  auto add = [&st]<typename E>(E&& element) {
    if constexpr (std::is_invocable_v<E&, soci::statement&>) {
      element(st);
    } else {
      st.exchange(std::forward<E>(element));
    }
  };
  (add(std::forward<Elements>(elements)), ...);
  st.alloc();
  st.prepare(sql_text, soci::details::st_one_time_query);
  st.define_and_bind();
  return st;
}

// A Row type binds its columns (Into), and each fetched row is turned into
// a value. Used by the modules that keep their own row types
// (deploy/deployment_rows.hpp, cmdb/cmdb_rows.hpp). QueryRows runs
// `sql_text` once, with `bind(statement)` adding the named uses, and
// collects `value(row)` for every row fetched.
template <typename Row, typename Bind, typename Value>
auto QueryRows(soci::session& sql, const std::string& sql_text, Bind bind, Value value) {
  Row row;
  soci::statement st = OneShot(
      sql, sql_text, [&row](soci::statement& s) { row.Into(s); }, bind);
  st.execute(false);
  std::vector<std::decay_t<std::invoke_result_t<Value&, const Row&>>> out;
  while (st.fetch()) out.push_back(value(row));
  return out;
}

}  // namespace fabu::coordinator
