// Extraction while the package downloads: a PreparedInstall extracts into a
// staging tree as the bytes arrive, so the install after verification only
// moves it into place (deployer.hpp, docs/agent.md).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "agent/deploy/deployer.hpp"
#include "agent/deploy/deployer_context.hpp"
#include "packaging/package.hpp"
#include "packaging/sha256.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using detail::DiscardStagedTree;
using packaging::Manifest;

PreparedInstall::PreparedInstall(InstallLayout layout,
                                 std::shared_ptr<packaging::GrowingFile> growing)
    : layout_(std::move(layout)), growing_(std::move(growing)) {}

PreparedInstall::~PreparedInstall() {
  // A download still running is no longer followed: the thread stops at its
  // next wait instead of waiting for the end.
  growing_->Abandon(Error(ErrorCode::kUnavailable, "the install no longer follows the download"));
  if (thread_.joinable()) thread_.join();
  // Untaken: no deployment runs, so the app's scratch space can go, and the
  // app directory too when this made it for a first install.
  if (!taken_ && !app_.empty()) DiscardStagedTree(layout_, app_);
}

Result<StagedTree> PreparedInstall::Take() {
  if (thread_.joinable()) thread_.join();
  taken_ = true;
  if (!result_) return Fail(ErrorCode::kInternal, "the extraction did not run");
  return std::move(*result_);
}

std::unique_ptr<PreparedInstall> Deployer::PrepareInstall(
    const fs::path& package, std::shared_ptr<packaging::GrowingFile> growing) {
  std::unique_ptr<PreparedInstall> prepared(new PreparedInstall(layout_, std::move(growing)));
  PreparedInstall* p = prepared.get();
  // Opened here, before the caller starts the download: the download
  // renames the file when it is whole, maybe before the thread runs.
  const int fd = ::open(package.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    p->result_ = Fail(ErrorCode::kIo,
                      fmt::format("cannot open {}: {}", package.string(), std::strerror(errno)));
    return prepared;
  }
  p->thread_ = std::thread([this, p, package, fd] {
    p->result_ = ExtractAhead(package, fd, p->growing_.get(), p->app_);
    ::close(fd);
  });
  return prepared;
}

Result<StagedTree> Deployer::ExtractAhead(const fs::path& package, int fd,
                                          packaging::GrowingFile* growing, std::string& app) {
  // The checks Install makes before extracting, but for the package's id,
  // which is known only when the last byte is in (Install checks it).
  const packaging::VerifyOptions options{
      .now = clock_.Now(), .durable = false, .file_digest = false, .growing = growing, .fd = fd};
  auto header = packaging::VerifySignature(package, trust_, options);
  if (!header) return std::unexpected(header.error());
  const Manifest& manifest = header->manifest;
  if (auto ok = CheckTargets(manifest.targets, host_); !ok) return std::unexpected(ok.error());
  auto current = layout_.CurrentVersion(manifest.name);
  if (!current) return std::unexpected(current.error());
  if (*current && !(**current < manifest.version)) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} {} is not above the installed {}", manifest.name,
                            manifest.version.ToString(), (*current)->ToString()));
  }
  app = manifest.name;
  if (auto ok = layout_.Prepare(manifest.name); !ok) return std::unexpected(ok.error());
  if (auto ok = layout_.RemoveLeftovers(manifest.name); !ok) return std::unexpected(ok.error());
  const fs::path staging = layout_.StagingDir(manifest.name, manifest.version);
  // Durability is Deploy's, once the package file is gone (see Extract).
  auto extracted = packaging::ExtractPackage(package, trust_, staging, options);
  if (!extracted) return std::unexpected(extracted.error());
  if (extracted->manifest_json != header->manifest_json) {
    (void)layout_.RemoveLeftovers(manifest.name);
    return Fail(ErrorCode::kIntegrity, "the package changed while it was being extracted");
  }
  return StagedTree{std::move(*extracted), staging};
}

std::optional<StagedTree> Deployer::ExtractLocalFile(const fs::path& package) {
  auto digest = std::async(std::launch::async, [&] { return packaging::Sha256::OfFile(package); });
  std::string app;
  auto staged = ExtractAhead(package, -1, nullptr, app);
  auto sha256 = digest.get();
  if (staged && sha256) {
    staged->verified.package_sha256 = std::move(*sha256);
    return std::move(*staged);
  }
  if (!app.empty()) DiscardStaged(app);
  return std::nullopt;
}

void Deployer::DiscardStaged(const std::string& app) { DiscardStagedTree(layout_, app); }

}  // namespace fabu::agent
