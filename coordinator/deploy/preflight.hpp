// Pre-flight before approval (procedure §6.2.5, the go-live review): each
// production target answers, without installing or downloading anything,
// whether it could install the release now (free space for the package and
// its tree, the package's targets, the installed version, the publisher
// key, a writable apps root, no other deployment in progress).
//
// A round is asked by `fabu release preflight R`, and by itself when a
// release is submitted and when it is scheduled; the question reaches each
// agent in the answer to its long poll (protocol PreflightRequest), the agent
// answers on kPreflightPath. The latest round is what counts: `release start`
// refuses while a production target of it would fail, unless an approver
// overrode that round with a reason. A host that did not answer within
// kPreflightAnswerSeconds is listed as unknown (it does not block a start:
// it may be down now and up at the window).
#pragma once

#include <soci/soci.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"
#include "protocol/agent_api.hpp"

namespace fabu::coordinator {

inline constexpr std::int64_t kPreflightAnswerSeconds = 60;

// A new round of pre-flight of `release` (its package) on `hosts`: their
// polls are in `wakeups`. Audited "release.preflight". Returns the round.
Result<long long> AskPreflight(Transaction& tx, const release::Release& release,
                               const StoredPackage& package, const std::vector<std::string>& hosts,
                               UnixSeconds now, const std::string& actor, Wakeups& wakeups);

// The same for the release's production targets now (its targets' labels
// and env=production) and its first package. kNotFound for a package not
// stored; nothing (round 0) when no host matches.
Result<long long> AskPreflightOfTargets(Transaction& tx, const release::Release& release,
                                        UnixSeconds now, const std::string& actor,
                                        Wakeups& wakeups);

// The question each of `hosts` has to answer now (answers in their order):
// of a latest round asked within kPreflightAnswerSeconds, not answered yet
// (the oldest such). Every agent poll asks, for the polls read together
// (store/read_batcher.hpp): one indexed probe for a host, one statement for
// many.
std::vector<std::optional<protocol::PreflightRequest>> OpenPreflights(
    soci::session& sql, StatementCache& statements, std::span<const std::string> hosts,
    UnixSeconds now);

// Records `host`'s answer. kNotFound when it was not asked that question
// (or its round is no longer the release's latest); an answer given twice
// keeps the first.
Result<void> RecordPreflightAnswer(Transaction& tx, const std::string& host,
                                   const protocol::PreflightAnswer& answer, UnixSeconds now);

// The latest round of `release_id`: {"round", "asked", "asked_by", "override"
// (null or {"by", "reason", "at"}), "hosts": [{"host", "state" (ready,
// would_fail, waiting, unknown), "reasons", "free_bytes",
// "installed_version"}], "ready", "would_fail", "unknown", "waiting"}; null
// before any round. With a `host_limit`, "hosts" holds the first that many
// only, those that would fail first (then unknown, waiting, ready; by name
// within each), and "hosts_total" says how many the round has; the counts
// are always the whole round's.
nlohmann::json PreflightStatus(soci::session& sql, const std::string& release_id, UnixSeconds now,
                               std::optional<std::size_t> host_limit = std::nullopt);

// What `release start` asks: kFailedPrecondition naming each host of the
// latest round that would fail and why, unless that round was overridden.
Result<void> CheckPreflightAllowsStart(soci::session& sql, const std::string& release_id,
                                       UnixSeconds now);

// An approver's override of the latest round's "would fail" answers, with
// the reason (audited "release.preflight-override"). kFailedPrecondition
// without a round.
Result<void> OverridePreflight(Transaction& tx, const std::string& release_id,
                               const std::string& actor, const std::string& reason,
                               UnixSeconds now);

}  // namespace fabu::coordinator
