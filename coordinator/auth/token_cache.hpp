// Users' bearer tokens the store has accepted (auth/secret_cache.hpp), so
// that a request of the CLI or a script costs the store one read (its own),
// not two: on PostgreSQL each read is a round trip to the server.
//
// What makes a remembered token wrong calls ForgetAll once committed: a
// token rotated, a user disabled (api/users_api.cpp), and so the other
// coordinators forget too (daemon.cpp). A token's expiry is remembered with
// it and checked at every lookup. An entry lives a minute at most, so a
// change made by hand in the database is seen within that minute.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "coordinator/auth/secret_cache.hpp"
#include "coordinator/auth/users.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

// What a cached token stands for.
struct TokenHolder {
  std::string name;
  Role role = Role::kViewer;
  UnixSeconds token_expires = 0;  // 0: never
};

class UserTokenCache : public SecretCache<TokenHolder> {
 public:
  static constexpr std::chrono::seconds kMaxAge{60};
  explicit UserTokenCache(std::size_t capacity = 1 << 16, Clock::duration max_age = kMaxAge)
      : SecretCache(capacity, max_age) {}
};

// AuthenticateToken (users.hpp) answered from `cache` when it holds `token`
// unexpired at `now`, else from `store` (remembering what it accepted).
Result<Principal> AuthenticateToken(Store& store, UserTokenCache& cache, std::string_view token,
                                    UnixSeconds now);

}  // namespace fabu::coordinator
