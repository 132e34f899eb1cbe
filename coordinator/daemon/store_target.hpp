// The store a data directory's config.json names (config.hpp, StoreConfig):
// DIR/coordinator.db, or the PostgreSQL database of `store.url`.
#pragma once

#include "coordinator/common/data_dir.hpp"
#include "coordinator/config/config.hpp"
#include "coordinator/store/dialect.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

// kInvalidArgument for a URL libpq cannot read or one with a password,
// kNotFound for a password file that cannot be read; messages name
// config.json's field.
Result<StoreTarget> StoreTargetOf(const DataDir& data, const StoreConfig& config);

}  // namespace fabu::coordinator
