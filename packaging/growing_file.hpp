// A file another thread is still writing, such as a package being downloaded.
//
// A reader of a growing file cannot take a short read for the end of the
// file: the writer says how far the file has grown (Grew), and that it is
// whole (Complete) or never will be (Abandon). A reader that caught up with
// the writer waits in WaitBeyond until there is more, the file is whole, or
// it was abandoned. The first of Complete and Abandon is final; later calls
// are ignored, so a writer's clean-up may call Abandon unconditionally.
//
// The size the writer reports may shrink (a download that starts over
// truncates its file); a reader only learns that more bytes may exist past
// its offset, and anything read across such a restart is caught by the
// digests the reader checks. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "protocol/error.hpp"

namespace fabu::packaging {

class GrowingFile {
 public:
  // Writer: the file now holds `size` bytes.
  void Grew(std::uint64_t size);
  // Writer: no more bytes will come; the file is whole.
  void Complete();
  // Writer: no more bytes will come; the file is not whole (`reason`).
  void Abandon(Error reason);

  // Reader: true once the file holds more than `offset` bytes, false when it
  // is complete and holds no more than `offset`; the writer's reason when it
  // was abandoned.
  Result<bool> WaitBeyond(std::uint64_t offset);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t size_ = 0;
  bool complete_ = false;
  std::optional<Error> abandoned_;
  int waiting_ = 0;  // readers in WaitBeyond: Grew notifies only when one waits
};

}  // namespace fabu::packaging
