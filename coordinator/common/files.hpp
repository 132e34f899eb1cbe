// Durable file writes for the coordinator's data directory.
//
// WriteFileDurably writes `content` to a temp file beside `path`, fsyncs it,
// sets `mode` (0600 unless told: files of the data directory are the
// coordinator's alone), renames it over `path` and fsyncs the directory: a
// reader sees the old file or the new one, never a torn one. On error nothing
// is left.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

Result<void> WriteFileDurably(const std::filesystem::path& path, std::string_view content,
                              mode_t mode = 0600);

// fsyncs a directory so a rename or a new entry in it survives a crash.
Result<void> SyncDirectory(const std::filesystem::path& dir);

// fsyncs an existing file.
Result<void> SyncFile(const std::filesystem::path& path);

}  // namespace fabu::coordinator
