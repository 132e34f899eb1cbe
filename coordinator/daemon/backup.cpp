#include "coordinator/daemon/backup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/sha256.hpp"
#include "platform/fs/files.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using packaging::Sha256;
using packaging::platform::ArchiveEntry;
using packaging::platform::ArchiveErrorText;
using packaging::platform::ArchiveReader;
using packaging::platform::ArchiveWriter;
using platform::UniqueFd;

constexpr char kFormat[] = "fabu-coordinator-backup";
constexpr int kFormatVersion = 1;
constexpr char kManifest[] = "manifest.json";
constexpr char kManifestSum[] = "manifest.json.sha256";
constexpr char kStoreMember[] = "coordinator.db";
constexpr std::size_t kChunk = 1 << 20;
// The manifest and its checksum are read into memory: a bound on them.
constexpr la_int64_t kManifestLimit = 64 << 20;
// How long the store's snapshot waits for a lock the daemon holds.
constexpr auto kSnapshotPatience = std::chrono::seconds(60);

std::string Errno() { return std::strerror(errno); }

// `path` absolute, without "." / ".." and without a trailing separator.
fs::path Normalized(const fs::path& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty() && p.has_parent_path()) p = p.parent_path();
  return p;
}

// A directory removed with everything in it on scope exit unless released.
class TempTree {
 public:
  explicit TempTree(fs::path path) : path_(std::move(path)) {}
  ~TempTree() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  const fs::path& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

// A new directory (0700) beside `path`: PARENT/.NAME.WHAT-XXXXXX.
Result<fs::path> MakeTempDirBeside(const fs::path& path, std::string_view what) {
  std::string name =
      (path.parent_path() / fmt::format(".{}.{}-XXXXXX", path.filename().string(), what)).string();
  if (::mkdtemp(name.data()) == nullptr) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot create a directory beside {}: {}", path.string(), Errno()));
  }
  return fs::path(name);
}

// ---- SQLite --------------------------------------------------------------

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Sqlite = std::unique_ptr<sqlite3, SqliteCloser>;

Result<Sqlite> OpenSqlite(const fs::path& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOFOLLOW, nullptr);
  Sqlite db(raw);
  if (rc != SQLITE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("cannot open {}: {}", path.string(),
                                            raw != nullptr ? sqlite3_errmsg(raw) : "no memory"));
  }
  sqlite3_busy_timeout(raw, 10'000);
  return db;
}

// Runs `sql` on `db`, returning the first column of each row as text.
Result<std::vector<std::string>> QueryColumn(sqlite3* db, const char* sql, const fs::path& path) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("{}: {}: {}", path.string(), sql, sqlite3_errmsg(db)));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
  std::vector<std::string> rows;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(raw, 0);
    rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
  }
  if (rc != SQLITE_DONE) {
    return Fail(ErrorCode::kIo, fmt::format("{}: {}: {}", path.string(), sql, sqlite3_errmsg(db)));
  }
  return rows;
}

// What a copy of the store says of itself.
struct StoreFacts {
  int schema_version = 0;
  std::vector<std::string> packages;  // ids of the packages it references
};

// Checks the store file at `path` (PRAGMA quick_check) and reads its schema
// version and package ids.
Result<StoreFacts> ReadStoreFacts(const fs::path& path) {
  auto db = OpenSqlite(path, SQLITE_OPEN_READONLY);
  if (!db) return std::unexpected(db.error());
  auto check = QueryColumn(db->get(), "PRAGMA quick_check", path);
  if (!check) return std::unexpected(check.error());
  if (check->size() != 1 || check->front() != "ok") {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{}: the store fails SQLite's quick_check: {}", path.string(),
                            check->empty() ? "no answer" : check->front()));
  }
  StoreFacts facts;
  auto version = QueryColumn(db->get(), "SELECT MAX(version) FROM schema_migrations", path);
  if (!version) return std::unexpected(version.error());
  if (version->size() != 1 || version->front().empty()) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{}: the store has no schema version", path.string()));
  }
  auto [end, parsed] =
      std::from_chars(version->front().data(), version->front().data() + version->front().size(),
                      facts.schema_version);
  if (parsed != std::errc()) {
    return Fail(ErrorCode::kIntegrity, fmt::format("{}: the store's schema version is \"{}\"",
                                                   path.string(), version->front()));
  }
  auto packages = QueryColumn(db->get(), "SELECT id FROM packages ORDER BY id", path);
  if (!packages) return std::unexpected(packages.error());
  facts.packages = std::move(*packages);
  return facts;
}

// Copies the store at `source` to the new file `target` with SQLite's online
// backup API. All pages go in one step, inside one read transaction of the
// source: in WAL mode the daemon keeps writing meanwhile, and the copy is the
// store as of one commit. The copy leaves WAL mode (one self-contained
// file); the daemon turns it on again when it opens the store.
Result<void> SnapshotStore(const fs::path& source, const fs::path& target) {
  // Read-only: the snapshot never writes to the daemon's store, nor
  // creates files there (a -shm owned by whoever ran the backup).
  auto from = OpenSqlite(source, SQLITE_OPEN_READONLY);
  if (!from) return std::unexpected(from.error());
  auto to = OpenSqlite(target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!to) return std::unexpected(to.error());
  sqlite3_backup* backup = sqlite3_backup_init(to->get(), "main", from->get(), "main");
  if (backup == nullptr) {
    return Fail(ErrorCode::kIo, fmt::format("cannot start the backup of {}: {}", source.string(),
                                            sqlite3_errmsg(to->get())));
  }
  const auto deadline = std::chrono::steady_clock::now() + kSnapshotPatience;
  int rc = SQLITE_OK;
  for (;;) {
    rc = sqlite3_backup_step(backup, -1);
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int finished = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE || finished != SQLITE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("copying the store {}: {}", source.string(),
                                            sqlite3_errstr(rc != SQLITE_DONE ? rc : finished)));
  }
  char* error = nullptr;
  if (sqlite3_exec(to->get(), "PRAGMA journal_mode=DELETE", nullptr, nullptr, &error) !=
      SQLITE_OK) {
    std::string text = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return Fail(ErrorCode::kIo, fmt::format("{}: {}", target.string(), text));
  }
  return {};
}

// ---- PostgreSQL ----------------------------------------------------------

// A store kept in PostgreSQL (config.json "store") is not a file this
// command can copy.
Result<void> RefusePostgres(const DataDir& data) {
  auto text = platform::ReadWholeFile(data.config());
  if (!text) return std::unexpected(text.error());
  const json config = json::parse(*text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} is not a JSON object", data.config().string()));
  }
  for (const auto& [key, value] : config.items()) {
    const bool store_setting = key == "store" || key.find("postgres") != std::string::npos;
    if (store_setting && value.dump().find("postgres") != std::string::npos) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("{} keeps its store in PostgreSQL (config.json \"{}\"): back the "
                              "database up with pg_dump and copy the data directory's files "
                              "beside it (docs/coordinator.md, \"Backups\"); `fabu-coordinator "
                              "backup` copies only a SQLite store",
                              data.root.string(), key));
    }
  }
  return {};
}

// The files config.json names (`*_file`, `trusted_keys`) that the backup
// does not carry: outside the data directory, or in a folder of it other
// than its top level and trusted/. Each as a note for the person.
void CollectOutsideFiles(const DataDir& data, const json& value, const std::string& key,
                         std::vector<std::string>& notes) {
  const auto note = [&](const std::string& named) {
    const fs::path path = (data.root / named).lexically_normal();  // absolute stays absolute
    const fs::path parent = path.parent_path();
    if (parent == data.root || parent == data.trusted()) return;
    notes.push_back(
        fmt::format("config.json names {} ({}), which is not in the backup: keep a "
                    "copy of it with the backup",
                    path.string(), key));
  };
  if (value.is_object()) {
    for (const auto& [name, inner] : value.items()) CollectOutsideFiles(data, inner, name, notes);
  } else if (value.is_array()) {
    for (const json& inner : value) CollectOutsideFiles(data, inner, key, notes);
  } else if (value.is_string() && !value.get<std::string>().empty() &&
             (key.ends_with("_file") || key == "trusted_keys")) {
    note(value.get<std::string>());
  }
}

// ---- writing the archive -------------------------------------------------

class ArchiveOut {
 public:
  ArchiveOut(archive* a, std::int64_t mtime) : a_(a), mtime_(mtime) {}

  // Adds a member holding `content`.
  Result<void> AddBytes(const std::string& name, std::string_view content, mode_t mode) {
    if (auto ok = Header(name, content.size(), mode); !ok) return ok;
    if (!content.empty() && archive_write_data(a_, content.data(), content.size()) !=
                                static_cast<la_ssize_t>(content.size())) {
      return Fail(ErrorCode::kIo, fmt::format("writing {}: {}", name, ArchiveErrorText(a_)));
    }
    Record(name, content.size(), Sha256::OfString(content), mode);
    return {};
  }

  // Adds a member holding the file `source` as it is when opened (a file
  // that grows meanwhile: its size then; one that shrinks: an error).
  Result<void> AddFile(const std::string& name, const fs::path& source, mode_t mode) {
    UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
      return Fail(ErrorCode::kIo, fmt::format("cannot read {}: {}", source.string(), Errno()));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Fail(ErrorCode::kIo, fmt::format("{}: not a plain file", source.string()));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (auto ok = Header(name, size, mode); !ok) return ok;
    Sha256 hash;
    std::vector<char> buffer(kChunk);
    std::uint64_t done = 0;
    while (done < size) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - done));
      const ssize_t n = ::read(fd.get(), buffer.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return Fail(ErrorCode::kIo, fmt::format("reading {}: {}", source.string(),
                                                n == 0 ? "it shrank while being copied" : Errno()));
      }
      hash.Update(buffer.data(), static_cast<std::size_t>(n));
      if (archive_write_data(a_, buffer.data(), static_cast<std::size_t>(n)) != n) {
        return Fail(ErrorCode::kIo, fmt::format("writing {}: {}", name, ArchiveErrorText(a_)));
      }
      done += static_cast<std::uint64_t>(n);
    }
    Record(name, size, hash.FinishHex(), mode);
    return {};
  }

  const json& files() const { return files_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  Result<void> Header(const std::string& name, std::uint64_t size, mode_t mode) {
    ArchiveEntry entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), mode);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(entry.get(), mtime_, 0);
    if (archive_write_header(a_, entry.get()) != ARCHIVE_OK) {
      return Fail(ErrorCode::kIo, fmt::format("writing {}: {}", name, ArchiveErrorText(a_)));
    }
    return {};
  }
  void Record(const std::string& name, std::uint64_t size, std::string sha256, mode_t mode) {
    files_.push_back({{"path", name},
                      {"size", size},
                      {"sha256", std::move(sha256)},
                      {"mode", fmt::format("{:04o}", mode)}});
    bytes_ += size;
  }

  archive* a_;
  std::int64_t mtime_;
  json files_ = json::array();
  std::uint64_t bytes_ = 0;
};

// The files of the data directory's top level a backup carries besides the
// store: every plain file but the store's own, the port file and logs.
bool TopLevelFileIsBackedUp(const std::string& name) {
  const std::string store = kStoreMember;
  if (name == store || name == store + "-wal" || name == store + "-shm" ||
      name == store + "-journal" || name == "coordinator.port" || name == kManifest ||
      name == kManifestSum) {
    return false;
  }
  if (name.ends_with(".log")) return false;
  // Temp files of a write in flight (platform/fs/files.hpp).
  if (name.find(".tmp-") != std::string::npos) return false;
  return true;
}

// The plain files of `dir`, sorted by name (none when it is absent).
Result<std::vector<std::string>> PlainFiles(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && !entry.is_symlink(ec)) {
      names.push_back(entry.path().filename().string());
    }
  }
  if (ec)
    return Fail(ErrorCode::kIo, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Result<BackupSummary> Backup(const BackupOptions& options) {
  const DataDir data{Normalized(options.data)};
  const fs::path out = Normalized(options.out);
  std::error_code ec;
  if (!fs::is_regular_file(data.store(), ec)) {
    if (fs::exists(data.config(), ec)) {
      if (auto ok = RefusePostgres(data); !ok) return std::unexpected(ok.error());
    }
    return Fail(ErrorCode::kNotFound,
                fmt::format("{} holds no coordinator store ({} is missing)", data.root.string(),
                            data.store().filename().string()));
  }
  if (auto ok = RefusePostgres(data); !ok) return std::unexpected(ok.error());
  std::vector<std::string> notes;
  if (auto text = platform::ReadWholeFile(data.config())) {
    CollectOutsideFiles(data, json::parse(*text, nullptr, false), "", notes);
  }
  if (out == data.root || out.string().starts_with(data.root.string() + "/")) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--out {} is inside the data directory; write the backup elsewhere",
                            out.string()));
  }
  if (fs::is_directory(out, ec)) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--out {} is a directory; name the backup file", out.string()));
  }

  // The audit checkpoints before the store: every checkpoint in the backup
  // then signs a head the store's copy holds, and the restored directory
  // verifies against them (`audit verify --checkpoint`). Whole lines only:
  // the daemon appends.
  std::optional<std::string> checkpoints;
  if (fs::exists(data.checkpoints(), ec)) {
    auto content = platform::ReadWholeFile(data.checkpoints());
    if (!content) return std::unexpected(content.error());
    const auto end = content->rfind('\n');
    content->resize(end == std::string::npos ? 0 : end + 1);
    checkpoints = std::move(*content);
  }
  // Then the store: the packages it references are then all in packages/
  // (content-addressed files are written before their row, never rewritten).
  auto work = MakeTempDirBeside(out, "parts");
  if (!work) return std::unexpected(work.error());
  TempTree work_tree(*work);
  const fs::path snapshot = *work / kStoreMember;
  if (auto ok = SnapshotStore(data.store(), snapshot); !ok) return std::unexpected(ok.error());
  auto facts = ReadStoreFacts(snapshot);
  if (!facts) return std::unexpected(facts.error().WithContext("the store's copy"));

  std::string temp = out.string() + ".tmp-XXXXXX";
  UniqueFd fd(platform::CurrentFileSystem().MakeTemp(temp.data(), O_CLOEXEC));
  if (!fd.valid()) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", temp, Errno()));
  }
  struct TempRemover {
    std::string path;
    ~TempRemover() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } remover{temp};

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  ArchiveWriter writer(archive_write_new());
  archive* a = writer.get();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_fd(a, fd.get()) != ARCHIVE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("{}: {}", temp, ArchiveErrorText(a)));
  }
  ArchiveOut archive_out(a, now);
  if (auto ok = archive_out.AddFile(kStoreMember, snapshot, 0600); !ok) {
    return std::unexpected(ok.error());
  }
  // What the daemon needs to start: refused when missing.
  for (const fs::path& required :
       {data.config(), data.ca_cert(), data.ca_key(), data.server_cert(), data.server_key()}) {
    if (!fs::is_regular_file(required, ec)) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("{} is missing: the data directory is not whole", required.string()));
    }
  }
  auto top = PlainFiles(data.root);
  if (!top) return std::unexpected(top.error());
  for (const std::string& name : *top) {
    if (!TopLevelFileIsBackedUp(name)) continue;
    if (data.root / name == data.checkpoints()) {
      if (!checkpoints) continue;  // made after the store's copy
      if (auto ok = archive_out.AddBytes(name, *checkpoints, 0600); !ok) {
        return std::unexpected(ok.error());
      }
      continue;
    }
    auto content = platform::ReadWholeFile(data.root / name);
    if (!content) return std::unexpected(content.error());
    if (auto ok = archive_out.AddBytes(name, *content, 0600); !ok) {
      return std::unexpected(ok.error());
    }
  }
  auto trusted = PlainFiles(data.trusted());
  if (!trusted) return std::unexpected(trusted.error());
  for (const std::string& name : *trusted) {
    if (name.find(".tmp-") != std::string::npos) continue;
    auto content = platform::ReadWholeFile(data.trusted() / name);
    if (!content) return std::unexpected(content.error());
    if (auto ok = archive_out.AddBytes("trusted/" + name, *content, 0600); !ok) {
      return std::unexpected(ok.error());
    }
  }
  for (const std::string& id : facts->packages) {
    const fs::path file = data.packages() / (id + ".fabu");
    if (!fs::is_regular_file(file, ec)) {
      return Fail(
          ErrorCode::kNotFound,
          fmt::format("the store references package {}, but {} is missing", id, file.string()));
    }
    if (auto ok = archive_out.AddFile("packages/" + id + ".fabu", file, 0400); !ok) {
      return std::unexpected(ok.error());
    }
  }

  const json manifest = {
      {"format", kFormat},
      {"format_version", kFormatVersion},
      {"fabu_version", options.fabu_version},
      {"created", protocol::FormatRfc3339Utc(now)},
      {"data_dir", data.root.string()},
      {"store",
       {{"engine", "sqlite"}, {"path", kStoreMember}, {"schema_version", facts->schema_version}}},
      {"files", archive_out.files()}};
  const int files = static_cast<int>(archive_out.files().size());
  const std::uint64_t bytes = archive_out.bytes();
  const std::string manifest_text = manifest.dump(2) + "\n";
  if (auto ok = archive_out.AddBytes(kManifest, manifest_text, 0600); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = archive_out.AddBytes(
          kManifestSum, fmt::format("{}  {}\n", Sha256::OfString(manifest_text), kManifest), 0600);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (archive_write_close(a) != ARCHIVE_OK) {
    return Fail(ErrorCode::kIo, fmt::format("{}: {}", temp, ArchiveErrorText(a)));
  }
  if (platform::CurrentFileSystem().Fsync(fd.get()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("fsync of {} failed: {}", temp, Errno()));
  }
  if (fd.Close() != 0) {
    return Fail(ErrorCode::kIo, fmt::format("closing {} failed: {}", temp, Errno()));
  }
  if (auto ok = platform::RenameAtomically(temp, out); !ok) return std::unexpected(ok.error());
  remover.path.clear();
  if (auto ok = platform::SyncDirectory(out.parent_path()); !ok) {
    return std::unexpected(ok.error());
  }
  return BackupSummary{files, bytes, facts->schema_version, std::move(notes)};
}

namespace {

// ---- reading the archive -------------------------------------------------

// A member's name as a backup writes it: a plain file of the top level, of
// trusted/ or of packages/; nothing else is ever written out.
bool IsMemberName(const std::string& name) {
  const auto plain = [](std::string_view part) {
    return !part.empty() && part != "." && part != ".." && part.find('/') == std::string_view::npos;
  };
  const auto slash = name.find('/');
  if (slash == std::string::npos) return plain(name);
  const std::string_view dir = std::string_view(name).substr(0, slash);
  return (dir == "trusted" || dir == "packages") && plain(std::string_view(name).substr(slash + 1));
}

struct Member {
  std::uint64_t size = 0;
  std::string sha256;
};

// The archive read into `into` (a fresh directory): the members' sizes and
// digests, and the manifest and its checksum kept in memory.
struct ReadBack {
  std::map<std::string, Member> members;
  std::string manifest;
  std::string manifest_sum;
  bool has_manifest = false;
  bool has_manifest_sum = false;
};

// Hands each chunk of the current member's data to `take`, in order; a read
// error is damage to the archive (kIntegrity naming the member).
template <typename Take>
Result<void> ReadMemberData(archive* a, const std::string& name, const std::string& damaged,
                            std::size_t chunk, Take take) {
  std::vector<char> buffer(chunk);
  for (;;) {
    const la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
    if (n == 0) return {};
    if (n < 0) {
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("{}: {}: {}", damaged, name, ArchiveErrorText(a)));
    }
    if (auto ok = take(std::string_view(buffer.data(), static_cast<std::size_t>(n))); !ok) {
      return ok;
    }
  }
}

Result<void> WriteMember(archive* a, const std::string& name, const fs::path& target,
                         const std::string& damaged, Member& member) {
  // Packages read-only, as the daemon keeps them; every other file 0600.
  const mode_t mode = name.starts_with("packages/") ? 0400 : 0600;
  UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", target.string(), Errno()));
  }
  Sha256 hash;
  auto written = ReadMemberData(a, name, damaged, kChunk, [&](std::string_view data) {
    hash.Update(data.data(), data.size());
    member.size += data.size();
    return platform::WriteAll(fd.get(), {data.data(), data.size()}, target);
  });
  if (!written) return written;
  member.sha256 = hash.FinishHex();
  if (::fchmod(fd.get(), mode) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("chmod {}: {}", target.string(), Errno()));
  }
  if (fd.Close() != 0) {
    return Fail(ErrorCode::kIo, fmt::format("closing {}: {}", target.string(), Errno()));
  }
  return {};
}

Result<std::string> ReadSmallMember(archive* a, const std::string& name,
                                    const std::string& damaged) {
  std::string content;
  auto read =
      ReadMemberData(a, name, damaged, 64 * 1024, [&](std::string_view data) -> Result<void> {
        content.append(data);
        if (static_cast<la_int64_t>(content.size()) > kManifestLimit) {
          return Fail(ErrorCode::kIntegrity,
                      fmt::format("{}: {} is larger than any manifest", damaged, name));
        }
        return {};
      });
  if (!read) return std::unexpected(read.error());
  return content;
}

Result<ReadBack> ReadArchive(const fs::path& from, const fs::path& into) {
  const std::string damaged = fmt::format("{} is damaged or truncated", from.string());
  ArchiveReader reader(archive_read_new());
  archive* a = reader.get();
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, from.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot read {}: {}", from.string(), ArchiveErrorText(a)));
  }
  ReadBack back;
  for (;;) {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY too: a header whose checksum fails.
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return Fail(ErrorCode::kIntegrity, fmt::format("{}: {}", damaged, ArchiveErrorText(a)));
    }
    const std::string name =
        archive_entry_pathname(entry) != nullptr ? archive_entry_pathname(entry) : std::string();
    if (archive_entry_filetype(entry) != AE_IFREG || !IsMemberName(name)) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("{} is damaged or not a fabu-coordinator backup: it holds "
                              "\"{}\", which no backup writes",
                              from.string(), name));
    }
    if (back.members.contains(name) || (name == kManifest && back.has_manifest) ||
        (name == kManifestSum && back.has_manifest_sum)) {
      return Fail(ErrorCode::kIntegrity, fmt::format("{}: it holds {} twice", damaged, name));
    }
    if (name == kManifest || name == kManifestSum) {
      auto content = ReadSmallMember(a, name, damaged);
      if (!content) return std::unexpected(content.error());
      if (name == kManifest) {
        back.manifest = std::move(*content);
        back.has_manifest = true;
      } else {
        back.manifest_sum = std::move(*content);
        back.has_manifest_sum = true;
      }
      continue;
    }
    Member member;
    if (auto ok = WriteMember(a, name, into / name, damaged, member); !ok) {
      return std::unexpected(ok.error());
    }
    back.members.emplace(name, std::move(member));
  }
  return back;
}

// Checks what was read against the manifest, and the manifest against its
// checksum. The error names the first thing wrong.
Result<json> CheckManifest(const fs::path& from, const ReadBack& back);

// A manifest with a field of the wrong type (one that matched its checksum:
// written by hand) is no backup.
Result<json> CheckAgainstManifest(const fs::path& from, const ReadBack& back) {
  try {
    return CheckManifest(from, back);
  } catch (const json::exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} is not a fabu-coordinator backup: its {}: {}", from.string(),
                            kManifest, e.what()));
  }
}

Result<json> CheckManifest(const fs::path& from, const ReadBack& back) {
  const std::string file = from.string();
  if (!back.has_manifest || !back.has_manifest_sum) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} is incomplete: it ends before its {} (a truncated or partial "
                            "backup)",
                            file, !back.has_manifest ? kManifest : kManifestSum));
  }
  const std::string expected_sum = back.manifest_sum.substr(0, back.manifest_sum.find(' '));
  if (Sha256::OfString(back.manifest) != expected_sum) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} is damaged: {} does not match its checksum in {}", file, kManifest,
                            kManifestSum));
  }
  const json manifest = json::parse(back.manifest, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() || manifest.value("format", "") != kFormat ||
      !manifest.contains("files") || !manifest["files"].is_array()) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{} is not a fabu-coordinator backup (its {} is not one)", file, kManifest));
  }
  if (manifest.value("format_version", 0) > kFormatVersion) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} was written by a newer fabu-coordinator ({}, backup format {}); "
                            "restore it with that version",
                            file, manifest.value("fabu_version", "?"),
                            manifest.value("format_version", 0)));
  }
  std::set<std::string> listed;
  for (const json& entry : manifest["files"]) {
    const std::string path = entry.value("path", "");
    listed.insert(path);
    const auto found = back.members.find(path);
    if (found == back.members.end()) {
      return Fail(
          ErrorCode::kIntegrity,
          fmt::format("{} is incomplete: {}, listed in its manifest, is missing", file, path));
    }
    const std::string sha256 = entry.value("sha256", "");
    if (found->second.size != entry.value("size", std::uint64_t{0}) ||
        found->second.sha256 != sha256) {
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("{} is damaged: {} does not match its manifest ({} bytes, SHA-256 "
                              "{}; the manifest says {} bytes, SHA-256 {})",
                              file, path, found->second.size, found->second.sha256,
                              entry.value("size", std::uint64_t{0}), sha256));
    }
  }
  for (const auto& [path, member] : back.members) {
    if (!listed.contains(path)) {
      return Fail(
          ErrorCode::kIntegrity,
          fmt::format("{} is damaged: it holds {}, which its manifest does not list", file, path));
    }
  }
  if (!listed.contains(kStoreMember)) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} is incomplete: it holds no {}", file, kStoreMember));
  }
  const json store = manifest.value("store", json::object());
  if (store.value("engine", "") != "sqlite") {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} holds no SQLite store; a PostgreSQL store is restored with "
                            "pg_restore (docs/coordinator.md, \"Backups\")",
                            file));
  }
  // What restore reports: of the right type, or the exception above.
  if (store.value("schema_version", 0) <= 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} is not a fabu-coordinator backup: its {} names no schema version",
                            file, kManifest));
  }
  (void)manifest.value("created", "");
  (void)manifest.value("fabu_version", "");
  return manifest;
}

Result<void> MakePrivateDir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create {}: {}", dir.string(), Errno()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("chmod {}: {}", dir.string(), Errno()));
  }
  return {};
}

}  // namespace

Result<RestoreSummary> Restore(const RestoreOptions& options) {
  const fs::path from = options.from;
  const DataDir data{Normalized(options.data)};
  std::error_code ec;
  if (!fs::is_regular_file(from, ec)) {
    return Fail(ErrorCode::kNotFound, fmt::format("{}: no such backup file", from.string()));
  }
  // The installation first: never read a backup only to refuse it.
  const bool exists = fs::exists(data.root, ec);
  if (exists) {
    if (!fs::is_directory(data.root, ec)) {
      return Fail(ErrorCode::kAlreadyExists,
                  fmt::format("{} exists and is not a directory", data.root.string()));
    }
    if (!options.force) {
      if (fs::exists(data.store(), ec)) {
        return Fail(ErrorCode::kAlreadyExists,
                    fmt::format("{} already holds a coordinator ({} exists): restore replaces it "
                                "only with --force (stop its daemon first)",
                                data.root.string(), data.store().filename().string()));
      }
      if (!fs::is_empty(data.root, ec)) {
        return Fail(ErrorCode::kAlreadyExists,
                    fmt::format("{} is not empty: restore into a new directory, or replace it "
                                "with --force",
                                data.root.string()));
      }
    }
  }
  if (auto ok = platform::MakeDirectories(data.root.parent_path()); !ok) {
    return std::unexpected(ok.error());
  }

  // Everything goes to a directory beside DIR; DIR is touched only by the
  // renames at the end, once all of it checked out.
  auto staging = MakeTempDirBeside(data.root, "restore");
  if (!staging) return std::unexpected(staging.error());
  TempTree staging_tree(*staging);
  const DataDir staged{*staging};
  for (const fs::path& dir : {staged.root, staged.trusted(), staged.packages(), staged.tmp()}) {
    if (auto ok = MakePrivateDir(dir); !ok) return std::unexpected(ok.error());
  }
  auto back = ReadArchive(from, staged.root);
  if (!back) return std::unexpected(back.error());
  auto manifest = CheckAgainstManifest(from, *back);
  if (!manifest) return std::unexpected(manifest.error());
  auto facts = ReadStoreFacts(staged.store());
  if (!facts) return std::unexpected(facts.error().WithContext(from.string()));
  const int schema_version = (*manifest)["store"].value("schema_version", 0);
  if (facts->schema_version != schema_version) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} is damaged: its store has schema version {}, its manifest says {}",
                            from.string(), facts->schema_version, schema_version));
  }
  for (const std::string& id : facts->packages) {
    if (!back->members.contains("packages/" + id + ".fabu")) {
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("{} is incomplete: its store references package {}, which it "
                              "does not hold",
                              from.string(), id));
    }
  }
  if (auto ok = platform::SyncFileSystemOf(staged.root); !ok) return std::unexpected(ok.error());

  // The old installation (--force, or an empty directory) is moved aside,
  // the restored one renamed in, and only then the old one removed.
  std::optional<TempTree> replaced;
  if (exists) {
    auto aside = MakeTempDirBeside(data.root, "replaced");
    if (!aside) return std::unexpected(aside.error());
    if (auto ok = platform::RenameAtomically(data.root, *aside); !ok) {
      std::filesystem::remove(*aside, ec);
      return std::unexpected(ok.error());
    }
    replaced.emplace(*aside);
  }
  if (auto ok = platform::RenameAtomically(staged.root, data.root); !ok) {
    if (replaced) {
      // Back as it was.
      if (platform::RenameAtomically(replaced->path(), data.root)) replaced->Release();
    }
    return std::unexpected(ok.error());
  }
  staging_tree.Release();
  if (auto ok = platform::SyncDirectory(data.root.parent_path()); !ok) {
    return std::unexpected(ok.error());
  }
  replaced.reset();  // removes the old installation
  return RestoreSummary{static_cast<int>(back->members.size()), schema_version,
                        manifest->value("created", ""), manifest->value("fabu_version", "")};
}

}  // namespace fabu::coordinator
