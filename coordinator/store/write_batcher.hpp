// Small writes of one kind written together: agents' events, hosts seen.
//
// Each Submit joins the write of its batcher already waiting in the store's
// queue, or queues one (Store::WriteAsync). When its turn comes, the write
// takes every item submitted until then and runs `work` once for all of
// them. So under load one write holds every item that arrived while the
// groups before it committed, and costs the few statements `work` runs for
// all of them rather than a few per item: on PostgreSQL every statement is
// a round trip to the server (docs/benchmarks.md "Stores"); on SQLite it
// saves the savepoint of each.
//
// `work` returns one answer per item, in order: an item it refuses (its own
// error) loses only itself, as `work` decides. Each item's `done` is called
// once, on the committer thread after the COMMIT, with its answer; or with
// the write's failure when `work` threw or the group's COMMIT failed (every
// item of the write gets it); or with kUnavailable when the store is closed
// (then on the submitting thread). `done` must be quick and must not call
// Read or Write of the store (as WriteAsync's). Thread-safe. Hold it in a
// shared_ptr: a queued write keeps it alive.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

template <typename Item, typename T>
class WriteBatcher : public std::enable_shared_from_this<WriteBatcher<Item, T>> {
 public:
  using Work = std::function<std::vector<Result<T>>(Transaction&, std::span<const Item>)>;
  using Done = std::function<void(Result<T>)>;

  // `origin`: the write's (Transaction::origin); an item that is audited
  // carries its own.
  WriteBatcher(Store& store, AuditOrigin origin, Work work)
      : store_(store), origin_(std::move(origin)), work_(std::move(work)) {}

  void Submit(Item item, Done done) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
      dones_.push_back(std::move(done));
      if (queued_) return;
      queued_ = true;
    }
    auto taken = std::make_shared<Taken>();
    store_.WriteAsync(
        origin_,
        [self = this->shared_from_this(),
         taken](Transaction& tx) -> Result<std::vector<Result<T>>> {
          self->Take(*taken);
          std::vector<Result<T>> answers = self->work_(tx, taken->items);
          if (answers.size() != taken->items.size()) {
            return Fail(ErrorCode::kInternal, "a batched write answered another number of items");
          }
          return answers;
        },
        [self = this->shared_from_this(), taken](Result<std::vector<Result<T>>> answers) {
          // Not run (the store is closed): what is waiting fails with it.
          if (!taken->ran) self->Take(*taken);
          for (std::size_t i = 0; i < taken->dones.size(); ++i) {
            taken->dones[i](answers ? std::move((*answers)[i])
                                    : Result<T>(std::unexpected(answers.error())));
          }
        });
  }

 private:
  struct Taken {
    bool ran = false;
    std::vector<Item> items;
    std::vector<Done> dones;
  };
  // Everything submitted so far is this write's; the next Submit queues a new one.
  void Take(Taken& taken) {
    std::lock_guard lock(mutex_);
    taken.ran = true;
    taken.items.swap(items_);
    taken.dones.swap(dones_);
    queued_ = false;
  }

  Store& store_;
  const AuditOrigin origin_;
  const Work work_;
  std::mutex mutex_;  // guards the three below
  std::vector<Item> items_;
  std::vector<Done> dones_;
  bool queued_ = false;  // a write is queued that has not taken them yet
};

}  // namespace fabu::coordinator
