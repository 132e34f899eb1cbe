// Small reads of one kind made together: agents' polls.
//
// A fleet's agents poll in waves (all of them within a second or two after a
// coordinator restarts, and again every poll wait after that), and every
// poll reads the store. On PostgreSQL each read is a round trip to the
// server and holds one of the store's few reading sessions meanwhile, so a
// wave of 5,000 polls was 5,000 round trips one after another
// (docs/benchmarks.md "Stores").
//
// Read(item) joins the batch waiting for a reading session, or starts one.
// The batch's first caller waits for a session (Store::ReadCached with the
// batcher's ReadFor); once it has one, the batch takes no more items, and
// `work` runs once for all of them. So a read that finds a session free runs
// at once, alone, as it would without the batcher, and the reads that come
// while the sessions are busy cost one statement (or a few) together.
//
// `work` returns one answer per item, in order: an item it refuses (its own
// error) loses only itself. When the read fails (the store closed or
// unreachable, or `work` threw) every item of the batch gets the failure.
// The caller waits for its answer, as for Store::Read. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

template <typename Item, typename T>
class ReadBatcher {
 public:
  using Work =
      std::function<std::vector<Result<T>>(soci::session&, StatementCache&, std::span<const Item>)>;

  ReadBatcher(Store& store, Store::ReadFor reader_for, Work work)
      : store_(store), reader_for_(reader_for), work_(std::move(work)) {}

  Result<T> Read(Item item) {
    std::unique_lock lock(mutex_);
    if (!open_) open_ = std::make_shared<Batch>();
    const std::shared_ptr<Batch> batch = open_;
    const std::size_t index = batch->items.size();
    batch->items.push_back(std::move(item));
    if (index == 0) {
      lock.unlock();
      auto answers = Run(batch);
      lock.lock();
      batch->answers = std::move(answers);
      batch->done = true;
      answered_.notify_all();
    } else {
      answered_.wait(lock, [&] { return batch->done; });
    }
    if (!batch->answers) return std::unexpected(batch->answers.error());
    return (*batch->answers)[index];
  }

  // Items waiting for their batch's read to begin (for tests).
  std::size_t Waiting() const {
    const std::lock_guard lock(mutex_);
    return open_ ? open_->items.size() : 0;
  }

 private:
  struct Batch {
    std::vector<Item> items;  // added to only while the batch is open_
    Result<std::vector<Result<T>>> answers;
    bool done = false;
  };

  // Closes the batch: a later Read starts the next one.
  void Close(const std::shared_ptr<Batch>& batch) {
    const std::lock_guard lock(mutex_);
    if (open_ == batch) open_.reset();
  }

  Result<std::vector<Result<T>>> Run(const std::shared_ptr<Batch>& batch) {
    auto answers = store_.ReadCached(
        [&](soci::session& sql, StatementCache& statements) -> Result<std::vector<Result<T>>> {
          Close(batch);
          std::vector<Result<T>> out = work_(sql, statements, batch->items);
          if (out.size() != batch->items.size()) {
            return Fail(ErrorCode::kInternal, "a batched read answered another number of items");
          }
          return out;
        },
        reader_for_);
    // Failed before `work` ran (no session): closed here, so that no item
    // joins a batch already answered.
    Close(batch);
    return answers;
  }

  Store& store_;
  const Store::ReadFor reader_for_;
  const Work work_;
  mutable std::mutex mutex_;  // guards open_ and every batch's answers and done
  std::condition_variable answered_;
  std::shared_ptr<Batch> open_;  // taking items; its first caller reads for it
};

}  // namespace fabu::coordinator
