#include "coordinator/daemon/store_target.hpp"

#include <fmt/format.h>

namespace fabu::coordinator {

Result<StoreTarget> StoreTargetOf(const DataDir& data, const StoreConfig& config) {
  if (!config.postgresql()) return StoreTarget::Sqlite(data.store());
  auto target = StoreTarget::Postgresql(config.url, config.password_file, config.sslmode);
  if (!target) return std::unexpected(target.error().WithContext(data.config().string()));
  return target;
}

}  // namespace fabu::coordinator
