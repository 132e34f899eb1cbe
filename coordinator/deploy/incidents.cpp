#include "coordinator/deploy/incidents.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

namespace fabu::coordinator {

std::string RecordIncident(Transaction& tx, const std::string& release_id, const std::string& host,
                           std::string_view severity, const std::string& summary,
                           std::string_view source, protocol::UnixSeconds now) {
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  tx.sql() << "SELECT MAX(seq) FROM incidents", soci::into(seq, ind);
  seq = ind == soci::i_ok ? seq + 1 : 1;
  std::string id = fmt::format("I-{}", seq), r = release_id, h = host, sev(severity),
              text = summary, src(source), state = "open", by = tx.origin().actor, empty;
  long long created = now, zero = 0;
  tx.sql() << "INSERT INTO incidents (id, seq, release_id, host, severity, summary, source, "
              "state, created, created_by, closed, closed_by) VALUES (:id, :seq, :r, :h, :sev, "
              ":sum, :src, :st, :c, :by, :z, :cb)",
      soci::use(id), soci::use(seq), soci::use(r), soci::use(h), soci::use(sev), soci::use(text),
      soci::use(src), soci::use(state), soci::use(created), soci::use(by), soci::use(zero),
      soci::use(empty);
  AuditEvent event("incident.create", "incident", id);
  event.release_id = release_id;
  event.detail = {{"host", host}, {"severity", sev}, {"summary", text}, {"source", src}};
  tx.Audit(event);
  return id;
}

}  // namespace fabu::coordinator
