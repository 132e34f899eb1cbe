// Where the checked entries of a package go (package_reader.cpp): nowhere
// (verify only) or a staging directory on disk (extract). The checks
// (checks.hpp) run before an entry reaches a sink.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

#include "packaging/manifest.hpp"
#include "protocol/error.hpp"

namespace fabu::packaging::reader {

// Receives each entry once it has passed every check: Begin, its data in
// pieces (files only), End.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  virtual Result<void> Begin(const ManifestEntry& entry) = 0;
  virtual Result<void> Data(const void* data, std::size_t size) = 0;
  virtual Result<void> End() = 0;
};

// A sink writing beneath a staging directory. Close finishes the tree (every
// write done, the directories' modes applied); without it, what is queued is
// dropped, as for a read that failed.
class StagingSink : public EntrySink {
 public:
  virtual Result<void> Close() = 0;
};

// Writes beneath `root`, a fresh private (0700) directory, on a second
// thread so writing overlaps reading (disk_sink.cpp).
std::unique_ptr<StagingSink> MakeStagingSink(std::filesystem::path root);

}  // namespace fabu::packaging::reader
