#include "packaging/growing_file.hpp"

namespace fabu::packaging {

void GrowingFile::Grew(std::uint64_t size) {
  std::lock_guard lock(mutex_);
  size_ = size;
  if (waiting_ > 0) changed_.notify_all();
}

void GrowingFile::Complete() {
  std::lock_guard lock(mutex_);
  if (complete_ || abandoned_) return;
  complete_ = true;
  changed_.notify_all();
}

void GrowingFile::Abandon(Error reason) {
  std::lock_guard lock(mutex_);
  if (complete_ || abandoned_) return;
  abandoned_ = std::move(reason);
  changed_.notify_all();
}

Result<bool> GrowingFile::WaitBeyond(std::uint64_t offset) {
  std::unique_lock lock(mutex_);
  ++waiting_;
  changed_.wait(lock, [&] { return size_ > offset || complete_ || abandoned_; });
  --waiting_;
  if (abandoned_) return std::unexpected(*abandoned_);
  return size_ > offset;
}

}  // namespace fabu::packaging
