// Durable file-system primitives for the agent's crash safety.
//
// Every change the agent must not lose (the journal, a release's manifest, the
// `current` link) is made visible by rename(2) and then made durable by
// fsync(2) of the directory that holds the name (LevelDB `SetCurrentFile`).
// A crash at any instant leaves either the old or the new content, never a
// torn file.
//
// Functions are reentrant; concurrent writers of the same path must be kept
// apart by the caller (the agent holds a lock on its data directory).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::agent {

// fsync(2) of a directory, so entries created, renamed or removed in it survive
// a crash.
Result<void> SyncDirectory(const std::filesystem::path& dir);

// syncfs(2) of the file system holding `path`: everything written there so
// far (a freshly extracted tree: thousands of files in one call) is on disk.
Result<void> SyncFileSystemOf(const std::filesystem::path& path);

// Writes `content` to `path` through `path.tmp-XXXXXX`: write, fsync, rename,
// fsync of the directory, the file getting `mode` (0600 for a secret: the
// temp file is created 0600, so the content is never readable by others). On
// error the temp file is removed and `path` is unchanged.
Result<void> WriteFileDurably(const std::filesystem::path& path, std::string_view content,
                              mode_t mode = 0644);

// Reads a whole file.
Result<std::string> ReadWholeFile(const std::filesystem::path& path);

// Removes `path` and everything under it (absent is fine), then syncs its parent.
Result<void> RemoveTreeDurably(const std::filesystem::path& path);

// Creates `dir` and its parents (mode 0755); existing is fine.
Result<void> MakeDirectories(const std::filesystem::path& dir);

}  // namespace fabu::agent
