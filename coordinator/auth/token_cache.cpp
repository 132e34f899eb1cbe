#include "coordinator/auth/token_cache.hpp"

namespace fabu::coordinator {

Result<Principal> AuthenticateToken(Store& store, UserTokenCache& cache, std::string_view token,
                                    UnixSeconds now) {
  if (auto holder = cache.FindValue(token);
      holder && (holder->token_expires == 0 || now < holder->token_expires)) {
    return Principal{std::move(holder->name), holder->role, std::nullopt};
  }
  // An expired token (or one never seen) is the store's to answer: it says why.
  const std::uint64_t generation = cache.Generation();
  UnixSeconds expires = 0;
  auto principal =
      store.Read([&](soci::session& sql) { return AuthenticateToken(sql, token, now, &expires); });
  if (principal) {
    cache.Remember(token, TokenHolder{principal->name, principal->role, expires}, generation);
  }
  return principal;
}

}  // namespace fabu::coordinator
